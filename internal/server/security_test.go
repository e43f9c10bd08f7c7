package server_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2/hpack"

	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
	"tlsgate/internal/server"
)

// TestHostSpellingsRefused covers S1 (d): on a connection opened for the one-way
// default (SNI localhost), a request naming the mutual domain api.example.com in a Host
// that tlsgate's domain lookup would not match but a backend might read as that name
// ("api.example.com:443:443" split at its first colon, a doubled trailing dot trimmed,
// a percent-encoded dot decoded) is refused with 400 and reaches no backend. Hosts the
// lookup matches are judged by their domain's policy (421), the request line's
// absolute form included, and well-formed hosts of the default policy are served with
// the host that was checked.
func TestHostSpellingsRefused(t *testing.T) {
	e := domainsEnv(t)
	for _, tc := range []struct {
		name, head string
		want       int
		host       string // the host the backend must see when served
	}{
		{"port twice", "GET / HTTP/1.1\r\nHost: api.example.com:443:443\r\n", 400, ""},
		{"two trailing dots", "GET / HTTP/1.1\r\nHost: api.example.com..\r\n", 400, ""},
		{"empty label", "GET / HTTP/1.1\r\nHost: api..example.com\r\n", 400, ""},
		{"name in brackets", "GET / HTTP/1.1\r\nHost: [api.example.com]\r\n", 400, ""},
		{"percent-encoded dot", "GET / HTTP/1.1\r\nHost: api%2eexample.com\r\n", 400, ""},
		{"port not a number", "GET / HTTP/1.1\r\nHost: api.example.com:https\r\n", 400, ""},
		{"userinfo", "GET / HTTP/1.1\r\nHost: localhost@api.example.com\r\n", 400, ""},
		{"two Host fields", "GET / HTTP/1.1\r\nHost: localhost\r\nHost: api.example.com\r\n", 400, ""},
		{"absolute form names the mutual domain", "GET https://api.example.com/ HTTP/1.1\r\nHost: localhost\r\n", 421, ""},
		{"mutual domain, other spelling", "GET / HTTP/1.1\r\nHost: API.example.COM.:8443\r\n", 421, ""},
		{"absolute form wins over Host", "GET https://localhost/ HTTP/1.1\r\nHost: api.example.com\r\n", 200, "localhost"},
		{"default host with port", "GET / HTTP/1.1\r\nHost: localhost:443\r\n", 200, "localhost:443"},
		{"IPv4 literal", "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n", 200, "127.0.0.1"},
		{"IPv6 literal", "GET / HTTP/1.1\r\nHost: [::1]:443\r\n", 200, "[::1]:443"},
		{"HTTP/1.0 without Host", "GET / HTTP/1.0\r\n", 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := dialH1(t, e, "edge")
			h.c.SetDeadline(time.Now().Add(10 * time.Second))
			h.send(tc.head + "\r\n")
			got := h.read(http.MethodGet)
			if got.status != tc.want {
				t.Fatalf("status %d, want %d", got.status, tc.want)
			}
			if tc.want == 200 && (got.Host != tc.host || got.Headers["X-Client-Verify"] != "NONE") {
				t.Fatalf("backend saw host %q, verify %q; want %q, NONE", got.Host, got.Headers["X-Client-Verify"], tc.host)
			}
		})
	}
	// HTTP/2: the same :authority spellings, and a Host field beside :authority that
	// names the mutual domain.
	for i, tc := range []struct {
		authority, host string
		want            int
	}{
		{"api.example.com:443:443", "", 400}, {"api%2eexample.com", "", 400}, {"api.example.com", "", 421},
		{"localhost:443", "", 200}, {"localhost", "api.example.com", 400},
	} {
		t.Run("h2 "+tc.authority+" host "+tc.host, func(t *testing.T) {
			h := rawH2(t, e, "edge")
			var b bytes.Buffer
			enc := hpack.NewEncoder(&b)
			for _, f := range []hpack.HeaderField{
				{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"},
				{Name: ":authority", Value: tc.authority}, {Name: ":path", Value: "/"},
			} {
				_ = enc.WriteField(f)
			}
			if tc.host != "" {
				_ = enc.WriteField(hpack.HeaderField{Name: "host", Value: tc.host})
			}
			h.request(uint32(2*i+1), b.Bytes())
			if got := h.status(uint32(2*i + 1)); got != tc.want {
				t.Fatalf("status %d, want %d", got, tc.want)
			}
		})
	}
}

// identicalEnv adds listener "edge" whose domains a.test and b.test spell out the same
// mutual policy separately, and c.test the same but trusting the other root.
func identicalEnv(t *testing.T) *env {
	return newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		e.ca.Issue("abc", pkitest.Server("a.test", "b.test", "c.test")).WritePair(t, e.dir, "abc")
		pkitest.Write(t, e.dir, "other.crt", e.other.PEM())
		return "  - {id: abc, cert: abc.crt, key: abc.key}\n  - {id: others, ca: other.crt}\n",
			`  - id: edge
    protocol: https
    listen: 127.0.0.1:0
    target_group: web
    ssl: {mode: one_way, server_certificates: [site]}
    domains:
      - names: [a.test]
        ssl: {mode: mutual, server_certificates: [abc], ca_certificate: clients}
      - names: [b.test]
        ssl: {mode: mutual, server_certificates: [abc], ca_certificate: clients}
      - names: [c.test]
        ssl: {mode: mutual, server_certificates: [abc], ca_certificate: others}
`
	})
}

// TestIdenticalPoliciesShareConnections covers N13 and S1 (c): the Host check compares
// policies, not names, so two domains that spell out the same ssl settings serve each
// other's requests on one (HTTP/2, coalesced) connection without a false 421, while a
// domain trusting another CA still gets 421 for a client verified against the first.
func TestIdenticalPoliciesShareConnections(t *testing.T) {
	e := identicalEnv(t)
	alice := new(e.ca.Issue("alice").TLS())
	cfg := e.tlsConfig(tls.VersionTLS13, alice)
	cfg.ServerName = "a.test"
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for _, tc := range []struct {
		host string
		want int
	}{{"a.test", 200}, {"b.test", 200}, {"c.test", 421}, {"localhost", 421}} {
		req, _ := http.NewRequest(http.MethodGet, "https://"+e.addr("edge")+"/", nil)
		req.Host = tc.host
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var got echo
		if resp.StatusCode == 200 {
			json.NewDecoder(resp.Body).Decode(&got)
		}
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.StatusCode != tc.want {
			t.Fatalf("%s: %s %d, want HTTP/2 %d", tc.host, resp.Proto, resp.StatusCode, tc.want)
		}
		if tc.want == 200 && got.Headers["X-Client-Cert-Subject"] != "CN=alice" {
			t.Fatalf("%s: backend saw subject %q", tc.host, got.Headers["X-Client-Cert-Subject"])
		}
	}
	// Each domain still requires its own CA on a handshake of its own.
	for _, sni := range []string{"b.test", "c.test"} {
		e.t = t
		code, _, err := e.do(sni, sni, "/", new(e.other.Issue("eve").TLS()), false)
		if want := map[string]int{"b.test": 0, "c.test": 200}[sni]; code != want {
			t.Fatalf("eve of the other root on %s: %d (%v), want %d", sni, code, err, want)
		}
	}
}

// TestIntermediateOnlyBundle covers N8: a CA bundle holding only an intermediate trusts
// that intermediate's clients (whether they send the intermediate or only their leaf)
// and not the root's own clients nor those of a sibling intermediate under the same root.
func TestIntermediateOnlyBundle(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		pkitest.Write(t, e.dir, "inter-only.crt", e.inter.PEM())
		return "  - {id: inter_only, ca: inter-only.crt, crl: [inter.crl]}\n",
			"  - {id: inter, protocol: https, listen: 127.0.0.1:0, target_group: web,\n" +
				"     ssl: {mode: mutual, server_certificates: [site], ca_certificate: inter_only}}\n"
	})
	sibling := e.ca.Intermediate("sibling intermediate")
	for _, tc := range []struct {
		name   string
		cert   tls.Certificate
		reason string
	}{
		{"intermediate's client, chain sent", e.inter.Issue("bob").TLS(), ""},
		{"intermediate's client, leaf only", e.inter.Issue("bob").LeafOnly(), ""},
		{"root's client", e.ca.Issue("alice").TLS(), "unknown_ca"},
		{"sibling intermediate's client", sibling.Issue("carol").TLS(), "unknown_ca"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			resp, _, err := e.request("inter", e.tlsConfig(tls.VersionTLS13, &tc.cert), nil, false)
			if tc.reason == "" {
				if err != nil || resp.StatusCode != 200 {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("served: %d", resp.StatusCode)
			}
			line := e.sink.Next(t, map[string]any{"msg": "handshake", "listener": "inter", "verify": "FAILED"})
			if line["reason"] != tc.reason {
				t.Fatalf("line %v, want reason %s", line, tc.reason)
			}
		})
	}
}

// TestSubjectCannotInjectHeaders covers S3's last case: a verified client whose subject
// holds CR, LF, NUL, quotes and separators gets them escaped in X-Client-Cert-Subject;
// no header of its making reaches the backend and its verdict stays tlsgate's own.
func TestSubjectCannotInjectHeaders(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	cn := "alice\r\nX-Injected: yes\r\nX-Client-Verify: FORGED\x00\"x=y;z,"
	c := new(e.ca.Issue(cn).TLS())
	for _, h2 := range []bool{false, true} {
		got, err := e.get("mutual", tls.VersionTLS13, c, nil, h2)
		if err != nil {
			t.Fatal(err)
		}
		subj := got.Headers["X-Client-Cert-Subject"]
		if _, ok := got.Headers["X-Injected"]; ok || got.Headers["X-Client-Verify"] != "SUCCESS" ||
			strings.ContainsAny(subj, "\r\n\x00") || !strings.HasPrefix(subj, "CN=alice%0D%0AX-Injected") {
			t.Fatalf("h2=%v: verify %q, subject %q, headers %v", h2, got.Headers["X-Client-Verify"], subj, got.Headers)
		}
	}
}

// apiEnv adds listener "edge": one-way by default, with a mutual domain api.example.com
// whose CA bundle (apica: the test root, CRL api-ca.crl listing e.revoked) is its own
// certificate entry.
func apiEnv(t *testing.T) *env {
	return newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		e.ca.Issue("api", pkitest.Server("api.example.com")).WritePair(t, e.dir, "api")
		pkitest.Write(t, e.dir, "api-ca.crt", e.ca.PEM())
		pkitest.Write(t, e.dir, "api-ca.crl", e.ca.CRL(24*time.Hour, e.revoked.Cert))
		return "  - {id: api, cert: api.crt, key: api.key}\n  - {id: apica, ca: api-ca.crt, crl: [api-ca.crl]}\n",
			`  - id: edge
    protocol: https
    listen: 127.0.0.1:0
    target_group: web
    ssl: {mode: one_way, server_certificates: [site]}
    domains:
      - names: [api.example.com]
        ssl: {mode: mutual, server_certificates: [api], ca_certificate: apica}
`
	})
}

// TestBrokenDomainTrustNeverDowngrades covers S10 for domains: a mutual domain whose CA
// bundle, CRL or certificate does not load is never served one-way. At start the whole
// config is refused, naming the file; on reload the running policy stays: a client
// without a certificate and a revoked one are still refused, a valid one served.
func TestBrokenDomainTrustNeverDowngrades(t *testing.T) {
	for _, f := range []string{"api-ca.crt", "api-ca.crl", "api.crt"} {
		t.Run(f, func(t *testing.T) {
			e := apiEnv(t)
			alice := new(e.ca.Issue("alice").TLS())
			e.writeFile(f, []byte("garbage"))
			if err := e.waitReload(); err == nil || !strings.Contains(err.Error(), f) {
				t.Fatalf("reload error %v does not name %s", err, f)
			}
			for _, tc := range []struct {
				name string
				cert *tls.Certificate
				want int
			}{{"no certificate", nil, 0}, {"revoked", new(e.revoked.TLS()), 0}, {"alice", alice, 200}} {
				if code, _, err := e.do("api.example.com", "api.example.com", "/", tc.cert, false); code != tc.want {
					t.Fatalf("%s: %d (%v), want %d", tc.name, code, err, tc.want)
				}
			}
			s := server.New(server.Options{ConfigPath: e.cfgPath})
			if err := s.Start(); err == nil {
				_ = s.Shutdown(t.Context())
				t.Fatalf("started with %s broken", f)
			} else if !strings.Contains(err.Error(), f) {
				t.Fatalf("start error %v does not name %s", err, f)
			}
		})
	}
}

// TestResumedSessionKeepsIdentity covers N17 and S5 for optional mode: a resumed
// session forwards the same identity as the full handshake that made it (verdict,
// subject, fingerprint), and once a new CRL revokes the client, its resumed or fresh
// session forwards FAILED:revoked and no identity. Each connection reads its response,
// so the TLS 1.3 ticket is in the cache for the next one.
func TestResumedSessionKeepsIdentity(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	alice := e.ca.Issue("alice")
	cache := tls.NewLRUClientSessionCache(8)
	get := func(h2 bool) (*echo, bool) {
		t.Helper()
		cfg := e.tlsConfig(tls.VersionTLS13, new(alice.TLS()))
		cfg.ClientSessionCache = cache
		resp, body, err := e.request("optional", cfg, nil, h2)
		if err != nil {
			t.Fatal(err)
		}
		return decodeEcho(t, resp.StatusCode, body), resp.TLS.DidResume
	}
	full, resumed := get(false)
	if resumed || full.Headers["X-Client-Verify"] != "SUCCESS" {
		t.Fatalf("first connection: resumed=%v verify %q", resumed, full.Headers["X-Client-Verify"])
	}
	for _, h2 := range []bool{false, true} {
		again, resumed := get(h2)
		if !resumed {
			t.Fatalf("h2=%v: no resumption: the test proves nothing", h2)
		}
		for _, h := range []string{"X-Client-Verify", "X-Client-Cert-Subject", "X-Client-Cert-Fingerprint", "X-Client-Cert-Serial", "X-Client-Cert"} {
			if again.Headers[h] != full.Headers[h] {
				t.Fatalf("h2=%v: resumed %s = %q, full handshake's %q", h2, h, again.Headers[h], full.Headers[h])
			}
		}
		line := e.sink.Next(t, map[string]any{"msg": "request", "listener": "optional", "resumed": true})
		if line["client_subject"] != "CN=alice" || line["verify"] != "SUCCESS" {
			t.Fatalf("resumed request line %v", line)
		}
	}
	e.writeFile("ca.crl", e.ca.CRL(24*time.Hour, e.revoked.Cert, alice.Cert))
	if err := e.waitReload(); err != nil {
		t.Fatal(err)
	}
	after, _ := get(false)
	if v := after.Headers["X-Client-Verify"]; v != "FAILED:revoked" {
		t.Fatalf("revoked client forwarded as %q", v)
	}
	if s, ok := after.Headers["X-Client-Cert-Subject"]; ok {
		t.Fatalf("revoked client's subject %q forwarded", s)
	}
}

// TestIntermediateEKUNests covers S6's intermediate case: a client certificate with
// clientAuth issued by an intermediate whose EKU allows serverAuth only is refused as
// bad_usage (EKUs nest down the chain), while one issued by an intermediate without
// an EKU restriction is served.
func TestIntermediateEKUNests(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	serverOnly := e.ca.Intermediate("server-only intermediate", pkitest.EKU(x509.ExtKeyUsageServerAuth))
	if !slices.Equal(serverOnly.Cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Fatalf("intermediate EKU %v: the test proves nothing", serverOnly.Cert.ExtKeyUsage)
	}
	for _, tc := range []struct {
		name   string
		cert   tls.Certificate
		reason string
	}{
		{"under a serverAuth-only intermediate", serverOnly.Issue("mallory").TLS(), "bad_usage"},
		{"under an unrestricted intermediate", e.inter.Issue("bob").TLS(), ""},
	} {
		e.t = t
		resp, _, err := e.request("mutual", e.tlsConfig(tls.VersionTLS13, &tc.cert), nil, false)
		if tc.reason == "" {
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("%s: refused: %v", tc.name, err)
			}
			continue
		}
		if err == nil {
			t.Fatalf("%s: served", tc.name)
		}
		line := e.sink.Next(t, map[string]any{"msg": "handshake", "listener": "mutual", "client_subject": "CN=mallory"})
		if line["reason"] != tc.reason {
			t.Fatalf("%s: line %v, want %s", tc.name, line, tc.reason)
		}
	}
}
