package listener

import (
	"crypto/aes"
	"crypto/cipher"
	crand "crypto/rand"
	"encoding/binary"
	"net"
	"net/http"
	"sync"

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
// It sets it on r, for the backend, replacing any the client sent, and returns the
// header's values too (for the response's header, without looking them up again); slot,
// when it has room, holds them (nil: a slice of their own).
func requestID(r *http.Request, trusted bool, slot []string) (string, []string) {
	if trusted {
		if ids := r.Header[HeaderRequestID]; len(ids) == 1 && validRequestID(ids[0]) {
			return ids[0], ids
		}
	}
	id := requestIDs.next()
	if len(slot) == 0 {
		slot = make([]string, 1)
	}
	slot[0] = id
	vals := slot[:1:1] // capacity 1: an append copies
	r.Header[HeaderRequestID] = vals
	return id, vals
}

// requestIDs hands out request ids cut from batches. A batch is idBatch successive
// values of a counter encrypted with AES-128 under a key drawn from the system at start
// (CTR mode over zeros: one AES-NI pass for the lot), hex-encoded in one pass and made
// one string, of which each id is a 32-byte substring. AES is a permutation, so ids do
// not repeat within a process (nor, but for a 2^-128 chance per pair, across processes
// with their own keys), and without the key they are as unpredictable as random ones.
// Per request that is a lock and a slice, where drawing two words from the runtime's
// ChaCha8 generator and encoding them into a string of its own cost about 0.8 k
// instructions and an allocation. A batch's string stays in memory while any of its ids
// does (2 KiB, as long as a request or its log line at most).
var requestIDs = newIDSource()

const idBatch = 64

type idSource struct {
	mu    sync.Mutex
	ctr   cipher.Stream
	batch string // the ids not handed out yet, 32 hex digits each
	raw   [idBatch * 16]byte
	hexed [idBatch * 32]byte
}

func newIDSource() *idSource {
	var key, iv [16]byte
	_, _ = crand.Read(key[:]) // never fails on the systems Go supports (it crashes instead)
	_, _ = crand.Read(iv[:])
	b, _ := aes.NewCipher(key[:]) // fails only for a key of another size
	return &idSource{ctr: cipher.NewCTR(b, iv[:])}
}

// next returns a new id: 32 hex digits, as nginx's $request_id.
func (s *idSource) next() string {
	s.mu.Lock()
	if len(s.batch) == 0 {
		clear(s.raw[:])
		s.ctr.XORKeyStream(s.raw[:], s.raw[:])
		encodeHex(&s.hexed, &s.raw)
		s.batch = string(s.hexed[:])
	}
	id := s.batch[:32]
	s.batch = s.batch[32:]
	s.mu.Unlock()
	return id
}

// encodeHex writes raw's bytes as lower-case hex digits (encoding/hex's), two at a
// time from a table: hex.Encode's nibble lookups cost ~19 instructions a byte, ~300 of
// each request's id.
func encodeHex(dst *[idBatch * 32]byte, raw *[idBatch * 16]byte) {
	for i, c := range raw {
		binary.LittleEndian.PutUint16(dst[2*i:], hexPairs[c])
	}
}

// hexPairs is each byte's two hex digits, the first in the low byte.
var hexPairs = func() (t [256]uint16) {
	const digits = "0123456789abcdef"
	for i := range t {
		t[i] = uint16(digits[i>>4]) | uint16(digits[i&15])<<8
	}
	return t
}()

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
