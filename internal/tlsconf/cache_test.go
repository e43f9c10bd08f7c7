package tlsconf_test

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"testing"
	"time"

	"tlsgate/internal/certstore"
	"tlsgate/internal/clientauth"
	"tlsgate/internal/config"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
	"tlsgate/internal/revocation"
	"tlsgate/internal/tlsconf"
)

// cachePKI is a client CA with an intermediate, a server certificate, and clients.
type cachePKI struct {
	ca, inter               *pkitest.CA
	site                    *pkitest.Leaf
	good, revoked, stranger *pkitest.Leaf
	expired                 *pkitest.Leaf
}

func newCachePKI(t *testing.T) *cachePKI {
	ca := pkitest.New(t, "cache root", pki.ECDSAP256)
	inter := ca.Intermediate("cache inter")
	return &cachePKI{ca: ca, inter: inter, site: ca.Issue("localhost", pkitest.Server("localhost")),
		good: inter.Issue("alice"), revoked: inter.Issue("mallory"),
		stranger: pkitest.New(t, "other root", pki.ECDSAP256).Issue("eve"),
		expired:  inter.Issue("old", pkitest.Valid(-48*time.Hour, -24*time.Hour))}
}

// store holds the server certificate and the "clients" bundle, whose CRL revokes the
// given certificates.
func (p *cachePKI) store(t *testing.T, revoked ...*x509.Certificate) *certstore.Store {
	crl, err := revocation.Parse(p.inter.CRL(time.Hour, revoked...), p.ca.Chain)
	if err != nil {
		t.Fatal(err)
	}
	return &certstore.Store{
		Servers: map[string]*certstore.Server{"site": {ID: "site", Cert: p.site.TLS()}},
		CAs: map[string]*certstore.CA{"clients": {ID: "clients", Certs: []*x509.Certificate{p.ca.Cert}, Pool: p.ca.Pool(),
			CRLs: revocation.NewSet([]*revocation.CRL{crl}, true)}},
	}
}

func cacheSSL(mode config.SSLMode, cache int) *config.SSL {
	return &config.SSL{Mode: mode, ServerCertificates: []string{"site"}, CACertificate: "clients", Policy: "tls12-modern",
		MaxClientChain: 5, MaxClientCertBytes: 16384, VerifyCache: cache}
}

// sameTicketKeys gives every Auth the same ticket key, as a reload that keeps the
// ticket identity does.
func sameTicketKeys(cfg *tls.Config, _ string, _ [][]byte) {
	cfg.SetSessionTicketKeys([][32]byte{{1, 2, 3}})
}

func newAuth(t *testing.T, s *config.SSL, store *certstore.Store) *tlsconf.Auth {
	a, err := tlsconf.New(s, store, tlsconf.Env{Now: func() time.Time { return pkitest.Now }, Tickets: sameTicketKeys})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

type handshakeResult struct {
	server  clientauth.Reason // the server's handshake, by reason
	client  error             // the client's handshake or first read
	verdict clientauth.Verdict
	resumed bool
}

// connect runs one handshake of a client presenting leaf (nil: none) against a, over
// loopback, and the server's Verdict when it completes.
func connect(t *testing.T, a *tlsconf.Auth, p *cachePKI, leaf *pkitest.Leaf, version uint16, sessions tls.ClientSessionCache) handshakeResult {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan handshakeResult, 1)
	go func() {
		var r handshakeResult
		defer func() { done <- r }()
		c, err := ln.Accept()
		if err != nil {
			r.server = clientauth.HandshakeError
			return
		}
		defer c.Close()
		tc := tls.Server(c, a.Config)
		if err := tc.Handshake(); err != nil {
			r.server = clientauth.HandshakeReason(err, pkitest.Now)
			return
		}
		cs := tc.ConnectionState()
		r.verdict, r.resumed = a.Verdict(&cs), cs.DidResume
		tc.Write([]byte("x"))
	}()
	cfg := &tls.Config{RootCAs: p.ca.Pool(), ServerName: "localhost", Time: func() time.Time { return pkitest.Now },
		MinVersion: version, MaxVersion: version, ClientSessionCache: sessions}
	if leaf != nil { // sent whether or not the server names its CA
		cert := leaf.TLS()
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	c, err := tls.Dial("tcp", ln.Addr().String(), cfg)
	if err == nil {
		_, err = c.Read(make([]byte, 1)) // TLS 1.3: a refusal arrives here
		c.Close()
	}
	r := <-done
	r.client = err
	return r
}

func versions(t *testing.T, f func(t *testing.T, version uint16)) {
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(v), func(t *testing.T) { t.Parallel(); f(t, v) })
	}
}

// alerted reports whether err is the client's view of the alert named text.
func alerted(err error, text string) bool {
	return err != nil && strings.Contains(err.Error(), "remote error: tls: "+text)
}

// TestVerifyCacheMutual: with verify_cache a client seen before is let in from the
// cache (the Verdict takes the chain VerifyConnection passed), and every refusal, with its
// precise reason at the server, is sent as bad_certificate. Without it, crypto/tls
// verifies the chain and sends unknown_ca and certificate_expired.
func TestVerifyCacheMutual(t *testing.T) {
	t.Parallel()
	p := newCachePKI(t)
	versions(t, func(t *testing.T, version uint16) {
		store := p.store(t, p.revoked.Cert)
		cached := newAuth(t, cacheSSL(config.ModeMutual, 100), store)
		plain := newAuth(t, cacheSSL(config.ModeMutual, 0), store)
		if plain.Verifier.Cache != nil {
			t.Fatal("a cache without verify_cache")
		}
		for i := range 2 {
			r := connect(t, cached, p, p.good, version, nil)
			if r.server != clientauth.OK || r.client != nil || r.verdict.Reason != clientauth.OK || r.verdict.Chain == nil {
				t.Fatalf("connection %d of a good client: %+v", i+1, r)
			}
		}
		// The first VerifyConnection misses, the second hits; each Verdict takes the
		// chain its VerifyConnection passed, with no lookup.
		if hits, misses := cached.Verifier.Cache.Stats(); hits != 1 || misses != 1 {
			t.Fatalf("hits/misses %d/%d, want 1/1", hits, misses)
		}
		for _, tc := range []struct {
			name        string
			leaf        *pkitest.Leaf
			reason      clientauth.Reason
			plainAlert  string
			cachedAlert string
		}{
			{"revoked", p.revoked, clientauth.Revoked, "bad certificate", "bad certificate"},
			{"unknown CA", p.stranger, clientauth.UnknownCA, "unknown certificate authority", "bad certificate"},
			{"expired", p.expired, clientauth.Expired, "expired certificate", "bad certificate"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for _, a := range []struct {
					auth  *tlsconf.Auth
					alert string
				}{{plain, tc.plainAlert}, {cached, tc.cachedAlert}} {
					for range 2 { // a refusal is never cached: the second is refused as the first
						r := connect(t, a.auth, p, tc.leaf, version, nil)
						if r.server != tc.reason || !alerted(r.client, a.alert) {
							t.Fatalf("cache %v: server reason %q, client %v; want %q and alert %q",
								a.auth.Verifier.Cache != nil, r.server, r.client, tc.reason, a.alert)
						}
					}
				}
			})
		}
		if n := cached.Verifier.Cache.Len(); n != 1 {
			t.Fatalf("%d chains stored, want 1", n)
		}
	})
}

// TestVerifyCacheOptional: in optional mode the handshake never fails on the client
// certificate, and the Verdict is the same with the cache as without, first and second
// time.
func TestVerifyCacheOptional(t *testing.T) {
	t.Parallel()
	p := newCachePKI(t)
	versions(t, func(t *testing.T, version uint16) {
		store := p.store(t, p.revoked.Cert)
		cached := newAuth(t, cacheSSL(config.ModeOptional, 100), store)
		plain := newAuth(t, cacheSSL(config.ModeOptional, 0), store)
		for _, tc := range []struct {
			name string
			leaf *pkitest.Leaf
			want clientauth.Reason
		}{
			{"good", p.good, clientauth.OK},
			{"none", nil, clientauth.NoClientCert},
			{"revoked", p.revoked, clientauth.Revoked},
			{"unknown CA", p.stranger, clientauth.UnknownCA},
			{"expired", p.expired, clientauth.Expired},
		} {
			for i := range 2 {
				for _, a := range []*tlsconf.Auth{plain, cached} {
					r := connect(t, a, p, tc.leaf, version, nil)
					if r.server != clientauth.OK || r.client != nil || r.verdict.Reason != tc.want || (r.verdict.Chain != nil) != (tc.want == clientauth.OK) {
						t.Fatalf("%s, connection %d, cache %v: %+v, want verdict %q", tc.name, i+1, a.Verifier.Cache != nil, r, tc.want)
					}
				}
			}
		}
		if hits, _ := cached.Verifier.Cache.Stats(); hits != 1 {
			t.Fatalf("%d hits, want 1 (the good client's second connection)", hits)
		}
	})
}

// TestVerifyCacheTickets: verify_cache is not part of the ticket identity, so turning
// it on or off keeps clients' tickets, and lets no one in who should not be. A ticket
// issued without the cache resumes with it, and VerifyConnection then runs the pipeline
// (a CRL published since refuses it); a ticket issued with the cache carries no chain
// crypto/tls verified, so without the cache crypto/tls does not resume it and verifies
// in full.
func TestVerifyCacheTickets(t *testing.T) {
	t.Parallel()
	p := newCachePKI(t)
	versions(t, func(t *testing.T, version uint16) {
		var ids []string
		record := func(cfg *tls.Config, id string, b [][]byte) { ids = append(ids, id); sameTicketKeys(cfg, id, b) }
		for _, n := range []int{0, 100} {
			if _, err := tlsconf.New(cacheSSL(config.ModeMutual, n), p.store(t), tlsconf.Env{Tickets: record}); err != nil {
				t.Fatal(err)
			}
		}
		if ids[0] != ids[1] {
			t.Fatal("verify_cache changes the ticket identity: turning it on would drop every ticket")
		}
		clean, revoking := p.store(t), p.store(t, p.good.Cert)
		for _, tc := range []struct {
			name         string
			from, to     int // verify_cache before and after the reload
			revokedSince bool
			resumed      bool
			reason       clientauth.Reason
		}{
			{"on to on", 100, 100, false, true, clientauth.OK},
			{"off to on", 0, 100, false, true, clientauth.OK},
			{"on to off", 100, 0, false, false, clientauth.OK},
			{"off to on, revoked since", 0, 100, true, false, clientauth.Revoked},
			{"on to on, revoked since", 100, 100, true, false, clientauth.Revoked},
			{"on to off, revoked since", 100, 0, true, false, clientauth.Revoked},
		} {
			t.Run(tc.name, func(t *testing.T) {
				sessions := tls.NewLRUClientSessionCache(4)
				before := newAuth(t, cacheSSL(config.ModeMutual, tc.from), clean)
				if r := connect(t, before, p, p.good, version, sessions); r.server != clientauth.OK || r.client != nil || r.resumed {
					t.Fatalf("first connection: %+v", r)
				}
				after := clean
				if tc.revokedSince {
					after = revoking
				}
				r := connect(t, newAuth(t, cacheSSL(config.ModeMutual, tc.to), after), p, p.good, version, sessions)
				if r.server != tc.reason || (tc.reason == clientauth.OK) != (r.client == nil) {
					t.Fatalf("after the reload: server reason %q, client %v; want %q", r.server, r.client, tc.reason)
				}
				if tc.reason == clientauth.OK && r.resumed != tc.resumed {
					t.Fatalf("resumed %v, want %v", r.resumed, tc.resumed)
				}
			})
		}
		// Resumed under the cache, VerifyConnection runs the pipeline from the cache.
		sessions := tls.NewLRUClientSessionCache(4)
		a := newAuth(t, cacheSSL(config.ModeMutual, 100), clean)
		for i := range 2 {
			if r := connect(t, a, p, p.good, version, sessions); r.server != clientauth.OK || r.resumed != (i == 1) {
				t.Fatalf("connection %d: %+v", i+1, r)
			}
		}
		if hits, misses := a.Verifier.Cache.Stats(); hits != 1 || misses != 1 {
			t.Fatalf("hits/misses %d/%d, want 1/1", hits, misses)
		}
	})
}
