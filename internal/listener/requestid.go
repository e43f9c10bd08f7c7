package listener

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"net"
	"net/http"

	"github.com/pires/go-proxyproto"
)

// HeaderRequestID carries a request's id to the backend and back to the client, and is
// the access line's request_id.
const HeaderRequestID = "X-Request-Id"

// A request's id is kept from the client only when the connection came from a trusted
// front: one of the listener's accept_proxy_protocol sources, which must send a PROXY
// header and so are known to be the operator's own load balancers. Anyone else's
// X-Request-Id is replaced, so a client cannot pick the id that ties log lines
// together (or inject text into them). Otherwise an id is made: 32 hex digits, as
// nginx's $request_id.

// viaFront reports whether c came from a trusted front: its PROXY header was required
// and read. The header is read already (RemoteAddr reads it), so this does not block.
func viaFront(c net.Conn) bool {
	pc, ok := c.(*proxyproto.Conn)
	return ok && pc.ProxyHeader() != nil
}

// requestID returns the id of r: the front's when trusted and well formed, else a new one.
// It sets it on r, for the backend, replacing any the client sent; slot, when it has
// room, holds the header's values (nil: a slice of their own).
func requestID(r *http.Request, trusted bool, slot []string) string {
	if trusted {
		if ids := r.Header[HeaderRequestID]; len(ids) == 1 && validRequestID(ids[0]) {
			return ids[0]
		}
	}
	// The runtime's ChaCha8 generator (math/rand/v2), seeded from the system: ids must
	// not repeat, not be secret, and a getrandom(2) per request is not free.
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	id := hex.EncodeToString(b[:])
	if len(slot) == 0 {
		slot = make([]string, 1)
	}
	slot[0] = id
	r.Header[HeaderRequestID] = slot[:1:1] // capacity 1: an append copies
	return id
}

// validRequestID accepts 1 to 128 bytes of letters, digits and -._:/+= (UUIDs, hex,
// base64, AWS's "Root=1-…" trace ids).
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == ':' || c == '/' || c == '+' || c == '=') {
			return false
		}
	}
	return true
}
