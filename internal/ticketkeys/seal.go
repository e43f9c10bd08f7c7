package ticketkeys

import (
	"crypto/tls"
	"sync/atomic"
)

// Tickets are sealed here rather than by crypto/tls: one XAES-256-GCM pass (xaes.go)
// over the session state, where crypto/tls's own format takes two passes (AES-128-CTR,
// then HMAC-SHA256 over the whole ticket) and a new cipher and MAC per ticket. A resumed
// mutual session's state carries the client's certificate and its chain (about 1 KB
// for ECDSA P-256), and each resumption opens one ticket and seals the next:
// BenchmarkXAESTicket against BenchmarkCTRHMACTicket. The security properties stay
// crypto/tls's: keys per policy (derive), the newest key seals, every key of the set
// opens (rotation, a fleet's shared set), and a ticket that does not open or parse is
// ignored, which makes a full handshake, never an error.

// ticketAD is authenticated with every ticket: the format, so that nothing else sealed
// under the same key could pass for a ticket. v2 is the session state as crypto/tls
// encodes it (policies without a CA bundle); v3 is that state with the bundle's
// certificates elided (elide.go), sealed under keys derived for the bundle (Attach).
var (
	ticketAD       = []byte("tlsgate session ticket v2")
	ticketADElided = []byte("tlsgate session ticket v3")
)

// policyTickets seals and opens the tickets of one policy. It is safe for concurrent
// use; set swaps the keys for the handshakes that start after it.
type policyTickets struct {
	keys   atomic.Pointer[[]*xaes] // newest first, never empty once set
	elider *elider                 // the policy's CA bundle; nil: none (v2 tickets)
}

// set installs keys (newest first).
func (p *policyTickets) set(keys [][32]byte) {
	xs := make([]*xaes, len(keys))
	for i, k := range keys {
		xs[i] = newXAES(k)
	}
	p.keys.Store(&xs)
}

// wrap is tls.Config.WrapSession: the state sealed under the newest key.
func (p *policyTickets) wrap(_ tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
	state, err := ss.Bytes()
	if err != nil {
		return nil, err
	}
	if p.elider == nil {
		return (*p.keys.Load())[0].seal(state, ticketAD)
	}
	return (*p.keys.Load())[0].seal(p.elider.elide(state), ticketADElided)
}

// unwrap is tls.Config.UnwrapSession: the state of a ticket that opens under any key of
// the set, else nil (crypto/tls then runs a full handshake; an error would abort it).
func (p *policyTickets) unwrap(ticket []byte, _ tls.ConnectionState) (*tls.SessionState, error) {
	ad := ticketAD
	if p.elider != nil {
		ad = ticketADElided
	}
	for _, x := range *p.keys.Load() {
		state, ok := x.open(ticket, ad)
		if !ok {
			continue
		}
		if p.elider != nil {
			if state, ok = p.elider.restore(state); !ok {
				return nil, nil // sealed by us, so not expected: a full handshake, as below
			}
		}
		ss, err := tls.ParseSessionState(state)
		if err != nil {
			return nil, nil // sealed by us, so not expected: a Go upgrade that changed the encoding
		}
		return ss, nil
	}
	return nil, nil
}
