// Package status keeps the runtime view of a running tlsgate: the client identities
// seen recently, the recent refusals with their reasons, and handshake counts per
// minute, fed by the listeners through listener.Observer; and it assembles the View
// that GET /api/v1/status and the admin console both show (one source), from that
// history and the running configuration, certificate store and target groups.
//
// Memory is bounded: the last MaxClients client identities (least recently seen
// dropped first), each with its last HandshakesPerClient handshakes, the last
// MaxRefusals refusals, and Window of one-minute handshake counts per listener.
// Nothing is persisted: a restart starts the history empty.
//
// It reads the listener, certstore and backend types but changes none of them, and
// knows nothing of HTTP (admin and admin/ui serve it).
package status
