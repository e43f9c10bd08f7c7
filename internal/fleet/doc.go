// Package fleet makes many tlsgate instances act as one load balancer through etcd. It
// owns the store layout under a prefix (revisions of a config with every file it
// references, written in one transaction; heartbeats of live instances), the sealing of
// what is stored with the fleet key (AES-256-GCM), push, pull and status, and the Node
// that loads, caches and watches revisions for `tlsgate serve` in fleet mode.
//
// It builds nothing itself: a Node hands each revision, decoded into a config.Config, to
// an Applier (the server's build–validate–swap). It does not import server.
//
// Layout under PREFIX:
//
//	PREFIX/head                      the current revision number (decimal)
//	PREFIX/rev/N/config              the config YAML of revision N (sealed)
//	PREFIX/rev/N/files/PATH          each file the config references, by the path it
//	                                 is written as in the config (sealed)
//	PREFIX/status/INSTANCE           heartbeat JSON of a live instance (lease-backed)
//	PREFIX/tickets                   the session-ticket master keys (sealed)
//	PREFIX/election/…                the election of the node that rotates them and
//	                                 fetches CRLs from their URLs
//	PREFIX/crl/HASH                  a CRL fetched from a URL, with the URL (sealed)
//
// Sealed values are AES-256-GCM with the key name (relative to PREFIX) as associated
// data, so a value cannot be moved to another key; nothing of a private key is readable
// with `etcdctl get --prefix`.
package fleet
