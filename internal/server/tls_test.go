package server_test

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"io"
	"sync"
	"testing"
	"time"

	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
	"tlsgate/internal/ticketkeys"
)

// TestSNIAndKeyType: several server certificates on one listener are picked by SNI, and
// an RSA and an ECDSA certificate for the same name by what the client supports.
func TestSNIAndKeyType(t *testing.T) {
	var rsaCA *pkitest.CA
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		rsaCA = pkitest.New(t, "rsa root", pki.RSA2048)
		e.ca.Issue("api", pkitest.Server("api.example.com")).WritePair(t, e.dir, "api")
		rsaCA.Issue("api-rsa", pkitest.Server("api.example.com")).WritePair(t, e.dir, "api-rsa")
		return "  - {id: api, cert: api.crt, key: api.key}\n  - {id: api-rsa, cert: api-rsa.crt, key: api-rsa.key}\n",
			"  - {id: multi, protocol: tcp_ssl, listen: 127.0.0.1:0, target_group: echo,\n" +
				"     ssl: {mode: one_way, server_certificates: [site, api, api-rsa]}}\n"
	})
	for _, tc := range []struct {
		name, sni string
		suites    []uint16 // TLS 1.2 suites offered
		wantCN    string
		wantRSA   bool
	}{
		{"default name", "localhost", nil, "localhost", false},
		{"no SNI falls back to the first", "", nil, "localhost", false},
		{"api, ECDSA client", "api.example.com", []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, "api", false},
		{"api, RSA-only client", "api.example.com", []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}, "api-rsa", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &tls.Config{ServerName: tc.sni, InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, CipherSuites: tc.suites}
			c, err := tls.Dial("tcp", e.addr("multi"), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			leaf := c.ConnectionState().PeerCertificates[0]
			if leaf.Subject.CommonName != tc.wantCN {
				t.Fatalf("server presented %q, want %q", leaf.Subject.CommonName, tc.wantCN)
			}
			_, isRSA := leaf.PublicKey.(*rsa.PublicKey)
			_, isEC := leaf.PublicKey.(*ecdsa.PublicKey)
			if isRSA != tc.wantRSA || isEC == tc.wantRSA {
				t.Fatalf("key type RSA=%v, want RSA=%v", isRSA, tc.wantRSA)
			}
		})
	}
}

// TestPolicies: TLS 1.0/1.1 are refused by default and offered when min_version names
// them (with tls12-compat's CBC suites); tls13-only refuses TLS 1.2 with the reason
// protocol_mismatch, in a line without tls_version or cipher (none was agreed).
func TestPolicies(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		return "", "  - {id: only13, protocol: tcp_ssl, listen: 127.0.0.1:0, target_group: echo,\n" +
			"     ssl: {mode: one_way, server_certificates: [site], policy: tls13-only}}\n" +
			"  - {id: legacy, protocol: tcp_ssl, listen: 127.0.0.1:0, target_group: echo,\n" +
			"     ssl: {mode: one_way, server_certificates: [site], policy: tls12-compat, min_version: \"1.0\"}}\n" +
			"  - {id: from11, protocol: tcp_ssl, listen: 127.0.0.1:0, target_group: echo,\n" +
			"     ssl: {mode: one_way, server_certificates: [site], policy: tls12-compat, min_version: \"1.1\"}}\n"
	})
	for _, tc := range []struct {
		name, listener string
		version        uint16
		ok             bool
	}{
		{"default refuses TLS 1.1", "tcpssl", tls.VersionTLS11, false},
		{"default refuses TLS 1.0", "tcpssl", tls.VersionTLS10, false},
		{"tls13-only refuses TLS 1.2", "only13", tls.VersionTLS12, false},
		{"tls13-only accepts TLS 1.3", "only13", tls.VersionTLS13, true},
		{"min_version 1.0 accepts TLS 1.0", "legacy", tls.VersionTLS10, true},
		{"min_version 1.0 accepts TLS 1.1", "legacy", tls.VersionTLS11, true},
		{"min_version 1.1 refuses TLS 1.0", "from11", tls.VersionTLS10, false},
		{"min_version 1.1 accepts TLS 1.1", "from11", tls.VersionTLS11, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			cfg := e.tlsConfig(tc.version, nil)
			cfg.MinVersion = tls.VersionTLS10
			c, err := tls.Dial("tcp", e.addr(tc.listener), cfg)
			if err == nil {
				if v := c.ConnectionState().Version; v != tc.version {
					t.Errorf("agreed on %s, want %s", tls.VersionName(v), tls.VersionName(tc.version))
				}
				c.Close()
			}
			if (err == nil) != tc.ok {
				t.Fatalf("handshake error %v, want ok=%v", err, tc.ok)
			}
			if !tc.ok {
				line := e.sink.Next(t, map[string]any{"msg": "handshake", "listener": tc.listener})
				if line["reason"] != "protocol_mismatch" {
					t.Fatalf("reason %v, want protocol_mismatch", line["reason"])
				}
				// No version or suite was agreed: the line leaves them out rather
				// than naming the zero values ("0x0000").
				if v, ok := line["tls_version"]; ok {
					t.Fatalf("tls_version %v in the line of a handshake that agreed on none", v)
				}
				if c, ok := line["cipher"]; ok {
					t.Fatalf("cipher %v in the line of a handshake that agreed on none", c)
				}
			}
		})
	}
}

// TestTicketsDoNotCrossListeners: a session ticket never resumes on another listener:
// not from one-way into mutual (which would skip the client certificate), and not from
// a mutual listener trusting CA A into one trusting CA B (nginx CVE-2025-23419, httpd
// CVE-2025-23048). Each ticket does resume on its own listener, so the test can fail.
func TestTicketsDoNotCrossListeners(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		pkitest.Write(t, e.dir, "other.crt", e.other.PEM())
		return "  - {id: others, ca: other.crt}\n",
			"  - {id: mutual_other, protocol: https, listen: 127.0.0.1:0, target_group: web,\n" +
				"     ssl: {mode: mutual, server_certificates: [site], ca_certificate: others}}\n"
	})
	alice := new(e.ca.Issue("alice").TLS())
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			e.t = t
			cache := tls.NewLRUClientSessionCache(4)
			var cert *tls.Certificate
			dial := func(id string) (tls.ConnectionState, error) {
				cfg := e.tlsConfig(version, cert)
				cfg.ClientSessionCache = cache
				return exchange10(e.addr(id), cfg)
			}
			if _, err := dial("one_way"); err != nil {
				t.Fatal(err)
			}
			cs, err := dial("one_way")
			if err != nil || !cs.DidResume {
				t.Fatalf("no resumption on the same listener (resumed=%v, %v): the test proves nothing", cs.DidResume, err)
			}
			cs, err = dial("mutual")
			if err == nil {
				t.Fatalf("mutual listener served a client without a certificate (resumed=%v)", cs.DidResume)
			}
			line := e.sink.Next(t, map[string]any{"msg": "handshake", "listener": "mutual"})
			if line["reason"] != "no_client_cert" || line["resumed"] != false {
				t.Fatalf("line %v", line)
			}

			cert = alice
			if _, err := dial("mutual"); err != nil {
				t.Fatal(err)
			}
			if cs, err := dial("mutual"); err != nil || !cs.DidResume {
				t.Fatalf("no resumption on the mutual listener (resumed=%v, %v)", cs.DidResume, err)
			}
			if cs, err := dial("mutual_other"); err == nil {
				t.Fatalf("listener trusting another CA served alice (resumed=%v)", cs.DidResume)
			}
			line = e.sink.Next(t, map[string]any{"msg": "handshake", "listener": "mutual_other"})
			if line["reason"] != "unknown_ca" || line["resumed"] != false {
				t.Fatalf("line %v", line)
			}
		})
	}
}

// anyNameCache is a client session cache that offers its last session whatever the
// server name: a client that tries a ticket of one domain on another (Go's own cache
// keys sessions by name; openssl s_client -sess_in does not).
type anyNameCache struct {
	mu sync.Mutex
	cs *tls.ClientSessionState
}

func (c *anyNameCache) Get(string) (*tls.ClientSessionState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cs, c.cs != nil
}

func (c *anyNameCache) Put(_ string, cs *tls.ClientSessionState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cs != nil {
		c.cs = cs
	}
}

// TestTicketsDoNotCrossDomains: on one listener, where SNI picks each domain's policy
// (issue 5), a ticket never resumes under another domain's policy: not from the one-way
// default into a mutual domain, and not from a domain trusting CA A into one trusting
// CA B. One server certificate serves every name, so the client does offer the ticket;
// each resumes on its own name, so the test can fail. The mutual domains keep a
// verify_cache, under which tlsgate checks chains itself and crypto/tls does not
// re-check a resumed client against ClientCAs: there the ticket keys alone keep the
// domains apart.
func TestTicketsDoNotCrossDomains(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		e.ca.Issue("names", pkitest.Server("localhost", "a.test", "b.test")).WritePair(t, e.dir, "names")
		pkitest.Write(t, e.dir, "other.crt", e.other.PEM())
		return "  - {id: names, cert: names.crt, key: names.key}\n  - {id: others, ca: other.crt}\n",
			"  - {id: edge, protocol: https, listen: 127.0.0.1:0, target_group: web,\n" +
				"     ssl: {mode: one_way, server_certificates: [names]},\n" +
				"     domains: [{names: [a.test], ssl: {mode: mutual, server_certificates: [names], ca_certificate: clients, verify_cache: 10}},\n" +
				"               {names: [b.test], ssl: {mode: mutual, server_certificates: [names], ca_certificate: others, verify_cache: 10}}]}\n"
	})
	alice := new(e.ca.Issue("alice").TLS())
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			e.t = t
			cache := &anyNameCache{}
			dial := func(name string, cert *tls.Certificate) (tls.ConnectionState, error) {
				cfg := e.tlsConfig(version, cert)
				cfg.ServerName, cfg.ClientSessionCache = name, cache
				return exchange10(e.addr("edge"), cfg)
			}
			refused := func(name, reason string, cert *tls.Certificate) {
				t.Helper()
				if cs, err := dial(name, cert); err == nil {
					t.Fatalf("%s served the client (resumed=%v), want %s", name, cs.DidResume, reason)
				}
				line := e.sink.Next(t, map[string]any{"msg": "handshake", "listener": "edge"})
				if line["reason"] != reason || line["resumed"] != false || line["sni"] != name {
					t.Fatalf("line %v, want a full handshake refused with %s", line, reason)
				}
			}
			for _, name := range []string{"localhost", "a.test"} {
				cert := alice
				if name == "localhost" {
					cert = nil
				}
				if _, err := dial(name, cert); err != nil {
					t.Fatal(err)
				}
				if cs, err := dial(name, cert); err != nil || !cs.DidResume {
					t.Fatalf("no resumption on %s (resumed=%v, %v): the test proves nothing", name, cs.DidResume, err)
				}
				if name == "localhost" {
					refused("a.test", "no_client_cert", nil)
				}
			}
			refused("b.test", "unknown_ca", alice)
		})
	}
}

// TestTicketsAcrossReloads: a reload that only changes a CRL keeps ticket keys, so a
// client resumes; the resumed session is still checked, so the client is refused once
// the new CRL revokes it; a reload that changes the CA bundle drops the keys.
func TestTicketsAcrossReloads(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	alice := e.ca.Issue("alice")
	cache := tls.NewLRUClientSessionCache(8)
	dial := func() (tls.ConnectionState, error) {
		cfg := e.tlsConfig(tls.VersionTLS13, new(alice.TLS()))
		cfg.ClientSessionCache = cache
		return exchange10(e.addr("mutual"), cfg)
	}
	if _, err := dial(); err != nil {
		t.Fatal(err)
	}
	e.writeFile("ca.crl", e.ca.CRL(24*time.Hour, e.revoked.Cert)) // a fresh CRL, same content
	if err := e.waitReload(); err != nil {
		t.Fatal(err)
	}
	if cs, err := dial(); err != nil || !cs.DidResume {
		t.Fatalf("after a CRL-only reload: resumed=%v err=%v; want a resumption", cs.DidResume, err)
	}
	e.writeFile("ca.crl", e.ca.CRL(24*time.Hour, e.revoked.Cert, alice.Cert))
	if err := e.waitReload(); err != nil {
		t.Fatal(err)
	}
	if _, err := dial(); err == nil {
		t.Fatal("a revoked client resumed its session")
	}
	line := e.sink.Next(t, map[string]any{"msg": "handshake", "listener": "mutual", "client_subject": "CN=alice"})
	if line["reason"] != "revoked" {
		t.Fatalf("line %v", line)
	}
	// A new CA bundle (the old root plus another) changes who is let in: no resumption.
	bob := e.ca.Issue("bob")
	alice = bob
	cache = tls.NewLRUClientSessionCache(8)
	if _, err := dial(); err != nil {
		t.Fatal(err)
	}
	e.writeFile("ca.crt", append(e.ca.PEM(), e.other.PEM()...))
	if err := e.waitReload(); err != nil {
		t.Fatal(err)
	}
	if cs, err := dial(); err != nil || cs.DidResume {
		t.Fatalf("after a CA change: resumed=%v err=%v; want a full handshake", cs.DidResume, err)
	}
}

// TestTicketKeysFollowTheRing: the running listeners take a new master set at once,
// without a reload: a ticket resumes while its master is in the set (now second) and
// not once it has left it, on TLS 1.2 and 1.3.
func TestTicketKeysFollowTheRing(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			e.t = t
			cache := tls.NewLRUClientSessionCache(4)
			dial := func() tls.ConnectionState {
				cfg := e.tlsConfig(version, nil)
				cfg.ClientSessionCache = cache
				c, err := tls.Dial("tcp", e.addr("one_way"), cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if _, err := io.WriteString(c, "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n"); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadAll(c); err != nil {
					t.Fatal(err)
				}
				return c.ConnectionState()
			}
			ring := e.srv.TicketKeys()
			dial()
			old := ring.Masters()[0]
			newer := ticketkeys.NewMaster(old.Created.Add(time.Hour))
			if err := ring.SetMasters([]ticketkeys.Master{newer, old}); err != nil {
				t.Fatal(err)
			}
			if cs := dial(); !cs.DidResume {
				t.Fatal("the ticket stopped resuming while its master is still in the set")
			}
			// The resumption may have brought a ticket under the newer master: start over
			// with one under old alone.
			cache = tls.NewLRUClientSessionCache(4)
			if err := ring.SetMasters([]ticketkeys.Master{old}); err != nil {
				t.Fatal(err)
			}
			dial()
			if err := ring.SetMasters([]ticketkeys.Master{newer}); err != nil {
				t.Fatal(err)
			}
			if cs := dial(); cs.DidResume {
				t.Fatal("a ticket resumed after its master left the set: the live config kept the old keys")
			}
		})
	}
}

// exchange10 makes one HTTP/1.0 request to addr over TLS with cfg and returns the
// connection's state. A whole request and response, so TLS 1.3 tickets (sent after
// the handshake) and TLS 1.3 rejections arrive before the connection ends.
func exchange10(addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n"); err != nil {
		return c.ConnectionState(), err
	}
	_, err = io.ReadAll(c)
	return c.ConnectionState(), err
}
