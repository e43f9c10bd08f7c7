package ticketkeys_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
	"tlsgate/internal/ticketkeys"
)

// mutualPKI is a client CA (root and intermediate, both in the policy's bundle), a
// client that sends its intermediate, and a server certificate.
type mutualPKI struct {
	bundle [][]byte // the policy's CA bundle: root, intermediate
	pool   *x509.CertPool
	client tls.Certificate
	server tls.Certificate
	roots  *x509.CertPool // the client's, for the server certificate
	root   *pkitest.CA
}

func newMutualPKI(t *testing.T, kt pki.KeyType) *mutualPKI {
	root := pkitest.New(t, "client root", kt)
	inter := root.Intermediate("client intermediate")
	srv := pkitest.New(t, "server root", pki.ECDSAP256)
	m := &mutualPKI{bundle: [][]byte{root.Cert.Raw, inter.Cert.Raw}, pool: x509.NewCertPool(),
		client: inter.Issue("client").TLS(), server: srv.Issue("localhost", pkitest.Server("localhost")).TLS(), roots: srv.Pool(), root: root}
	m.pool.AddCert(root.Cert)
	m.pool.AddCert(inter.Cert)
	if len(m.client.Certificate) != 2 {
		t.Fatalf("the client sends %d certificates, want its leaf and intermediate", len(m.client.Certificate))
	}
	return m
}

// serverConfig is a mutual policy's config; Attach is up to the caller.
func (m *mutualPKI) serverConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{m.server}, ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs: m.pool.Clone(), Time: testNow}
}

// handshake runs one mutual handshake over loopback at version with the client's
// session cache, and returns the server's view of it.
func (m *mutualPKI) handshake(t *testing.T, srv *tls.Config, cache tls.ClientSessionCache, version uint16) tls.ConnectionState {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	var state tls.ConnectionState
	var serr error
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			serr = err
			return
		}
		defer c.Close()
		tc := tls.Server(c, srv)
		if serr = tc.Handshake(); serr == nil {
			state = tc.ConnectionState()
			_, serr = tc.Write([]byte{1}) // a read on the client takes the TLS 1.3 ticket in
		}
	})
	cfg := &tls.Config{RootCAs: m.roots, ServerName: "localhost", Certificates: []tls.Certificate{m.client},
		Time: testNow, MinVersion: version, MaxVersion: version, ClientSessionCache: cache}
	c, err := tls.Dial("tcp", ln.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if serr != nil {
		t.Fatalf("server: %v", serr)
	}
	return state
}

func testNow() time.Time { return pkitest.Now }

func sameChains(a, b [][]*x509.Certificate) bool {
	return slices.EqualFunc(a, b, func(x, y []*x509.Certificate) bool {
		return slices.EqualFunc(x, y, func(p, q *x509.Certificate) bool { return bytes.Equal(p.Raw, q.Raw) })
	})
}

func keyTypes(t *testing.T, f func(t *testing.T, kt pki.KeyType, version uint16)) {
	for _, kt := range []pki.KeyType{pki.ECDSAP256, pki.RSA2048} {
		t.Run(string(kt), func(t *testing.T) {
			t.Parallel()
			versions(t, func(t *testing.T, v uint16) { f(t, kt, v) })
		})
	}
}

// TestMutualTicketElided: a mutual policy's tickets resume with the full handshake's
// verified chains, and are smaller than the same state sealed whole (a policy attached
// without its bundle) by at least the bundle's certificates, for ECDSA and RSA, with a
// root and intermediate in the bundle and a client that sends its intermediate.
func TestMutualTicketElided(t *testing.T) {
	keyTypes(t, func(t *testing.T, kt pki.KeyType, v uint16) {
		m := newMutualPKI(t, kt)
		ring := ticketkeys.New(ticketkeys.Options{Now: testNow})
		whole, elided := m.serverConfig(), m.serverConfig()
		ring.Attach(whole, "mutual", nil)
		ring.Attach(elided, "mutual", m.bundle)

		wholeCache := &sessions{}
		m.handshake(t, whole, wholeCache, v)
		cache := &sessions{}
		full := m.handshake(t, elided, cache, v)
		if full.DidResume || len(full.VerifiedChains) == 0 {
			t.Fatalf("first handshake: resumed %v, %d verified chains", full.DidResume, len(full.VerifiedChains))
		}
		wholeLen, elidedLen := len(wholeCache.ticket(t)), len(cache.ticket(t))
		saved := 0
		for _, d := range m.bundle {
			saved += len(d)
		}
		if wholeLen-elidedLen < saved {
			t.Fatalf("ticket %d bytes, %d sealed whole: %d saved, want at least the bundle's %d", elidedLen, wholeLen, wholeLen-elidedLen, saved)
		}
		t.Logf("%s: ticket %d bytes, %d sealed whole", tls.VersionName(v), elidedLen, wholeLen)
		for range 2 { // the resumed handshake's own ticket resumes too
			resumed := m.handshake(t, elided, cache, v)
			if !resumed.DidResume {
				t.Fatal("did not resume")
			}
			if !sameChains(resumed.VerifiedChains, full.VerifiedChains) {
				t.Fatalf("resumed with %d verified chains, not the full handshake's %d", len(resumed.VerifiedChains), len(full.VerifiedChains))
			}
		}
	})
}

// TestUnresolvedReference: a ticket that opens under the key but names a certificate
// the bundle does not have makes a full handshake, not a failed one. (A ring never gets
// there: the bundle is in the key. AttachKey shares one key between two bundles.)
func TestUnresolvedReference(t *testing.T) {
	keyTypes(t, func(t *testing.T, kt pki.KeyType, v uint16) {
		m := newMutualPKI(t, kt)
		key := [32]byte{7}
		issuer, same, short := m.serverConfig(), m.serverConfig(), m.serverConfig()
		ticketkeys.AttachKey(issuer, key, m.bundle)
		ticketkeys.AttachKey(same, key, m.bundle)
		ticketkeys.AttachKey(short, key, m.bundle[:1]) // the intermediate's index is out of range
		cache := &sessions{first: true}
		m.handshake(t, issuer, cache, v)
		if !m.handshake(t, same, cache, v).DidResume {
			t.Fatal("the same key and bundle did not resume")
		}
		cs := m.handshake(t, short, cache, v)
		if cs.DidResume {
			t.Fatal("resumed with a reference out of the bundle")
		}
		if len(cs.VerifiedChains) == 0 {
			t.Fatal("the full handshake verified no chain")
		}
	})
}

// TestWholeTicketRefused: a ticket sealed whole (v2, what a mutual policy issued before
// elision, and what a node not yet upgraded issues) makes one full handshake under the
// elided format, whose keys differ; the next ticket resumes.
func TestWholeTicketRefused(t *testing.T) {
	keyTypes(t, func(t *testing.T, kt pki.KeyType, v uint16) {
		m := newMutualPKI(t, kt)
		ring := ticketkeys.New(ticketkeys.Options{Now: testNow})
		old, upgraded := m.serverConfig(), m.serverConfig()
		ring.Attach(old, "mutual", nil)
		ring.Attach(upgraded, "mutual", m.bundle)
		cache := &sessions{}
		m.handshake(t, old, cache, v)
		if !m.handshake(t, old, cache, v).DidResume {
			t.Fatal("the whole ticket did not resume under its own format")
		}
		if m.handshake(t, upgraded, cache, v).DidResume {
			t.Fatal("a whole ticket resumed under the elided format")
		}
		if !m.handshake(t, upgraded, cache, v).DidResume {
			t.Fatal("the ticket of the full handshake did not resume")
		}
	})
}

// TestFleetElided: two rings holding the same masters, and two configs with the same
// identity and bundle (the fleet's nodes, each with its own copy), resume each other's
// tickets; a different bundle under the same identity does not, even one whose
// certificates have the lengths of the first's (which the state's framing would not
// notice, and whose root anyValidVerifiedChain would accept): the bundle is in the key.
func TestFleetElided(t *testing.T) {
	keyTypes(t, func(t *testing.T, kt pki.KeyType, v uint16) {
		m := newMutualPKI(t, kt)
		a, b := ticketkeys.New(ticketkeys.Options{Now: testNow}), ticketkeys.New(ticketkeys.Options{Now: testNow})
		master := ticketkeys.NewMaster(pkitest.Now)
		for _, r := range []*ticketkeys.Ring{a, b} {
			if err := r.SetMasters([]ticketkeys.Master{master}); err != nil {
				t.Fatal(err)
			}
		}
		copied := make([][]byte, len(m.bundle))
		for i, d := range m.bundle {
			copied[i] = bytes.Clone(d)
		}
		srvA, srvB, other := m.serverConfig(), m.serverConfig(), m.serverConfig()
		a.Attach(srvA, "site", m.bundle)
		b.Attach(srvB, "site", copied)
		// Another intermediate of the same name and length, in other's pool and bundle.
		var twin []byte
		for range 100 {
			if c := m.root.Intermediate("client intermediate").Cert; len(c.Raw) == len(m.bundle[1]) {
				twin = c.Raw
				other.ClientCAs.AddCert(c)
				break
			}
		}
		if twin == nil {
			t.Fatal("no intermediate of the same length in 100 tries")
		}
		b.Attach(other, "site", [][]byte{m.bundle[0], twin})
		cache := &sessions{first: true}
		full := m.handshake(t, srvA, cache, v)
		resumed := m.handshake(t, srvB, cache, v)
		if !resumed.DidResume || !sameChains(resumed.VerifiedChains, full.VerifiedChains) {
			t.Fatalf("node b: resumed %v, same chains %v", resumed.DidResume, sameChains(resumed.VerifiedChains, full.VerifiedChains))
		}
		if m.handshake(t, other, cache, v).DidResume {
			t.Fatal("a ticket resumed under another bundle")
		}
	})
}

// recordWrap makes cfg's WrapSession also keep the last state and ticket it sealed.
type recordWrap struct {
	mu            sync.Mutex
	state, ticket []byte
}

func (r *recordWrap) attach(cfg *tls.Config) {
	inner := cfg.WrapSession
	cfg.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		ticket, err := inner(cs, ss)
		state, _ := ss.Bytes()
		r.mu.Lock()
		defer r.mu.Unlock()
		r.state, r.ticket = state, ticket
		return ticket, err
	}
}

// TestOneWayTicketUnchanged: a policy without a bundle seals exactly what it sealed
// before elision: the whole state, under the v2 key and additional data.
func TestOneWayTicketUnchanged(t *testing.T) {
	versions(t, func(t *testing.T, v uint16) {
		f := newFixture(t)
		ring := ticketkeys.New(ticketkeys.Options{Now: f.clk.Now})
		srv := f.server(ring, "one-way")
		rec := &recordWrap{}
		rec.attach(srv)
		f.resumed(t, srv, v)
		rec.mu.Lock()
		defer rec.mu.Unlock()
		got, ok := ticketkeys.OpenV2(ring.Masters()[0], "one-way", rec.ticket)
		if !ok || !bytes.Equal(got, rec.state) {
			t.Fatalf("the one-way ticket is not the v2 sealing of the whole state (opened %v)", ok)
		}
	})
}
