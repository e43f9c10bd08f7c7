package ticketkeys

import "crypto/tls"

// AttachKey makes cfg seal and open tickets with key alone and bundle's elision, without
// a ring: tests pair it with a server holding the same key and another bundle.
func AttachKey(cfg *tls.Config, key [32]byte, bundle [][]byte) {
	p := &policyTickets{elider: newElider(bundle)}
	p.set([][32]byte{key})
	cfg.WrapSession, cfg.UnwrapSession = p.wrap, p.unwrap
}

// OpenV2 opens ticket as the code before elision did (ticket key label v2 over
// identity, additional data v2), for the test that one-way tickets did not change.
func OpenV2(m Master, identity string, ticket []byte) ([]byte, bool) {
	return newXAES(hkdf32(m.Secret[:], "tlsgate session ticket key v2\x00"+identity)).open(ticket, []byte("tlsgate session ticket v2"))
}
