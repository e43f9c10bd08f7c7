package server_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"testing"
	"time"

	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
)

// domainsEnv adds listener "edge": one-way by default (localhost), a mutual domain
// api.example.com (+ wildcard) with an /admin/ rule allowing only CN=admin, and a
// domain www.example.com that shares the default policy.
func domainsEnv(t *testing.T) *env {
	return newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		e.ca.Issue("api", pkitest.Server("api.example.com", "*.api.example.com")).WritePair(t, e.dir, "api")
		return "  - {id: api, cert: api.crt, key: api.key}\n",
			`  - id: edge
    protocol: https
    listen: 127.0.0.1:0
    target_group: web
    ssl: {mode: one_way, server_certificates: [site]}
    domains:
      - names: [api.example.com, "*.api.example.com"]
        ssl: {mode: mutual, server_certificates: [api], ca_certificate: clients}
        rules:
          - {path: /admin/, target_group: web, allow: {cn: [admin]}}
      - names: [www.example.com]
`
	})
}

// do sends one request over a new connection with the given SNI and Host.
func (e *env) do(sni, host, path string, cert *tls.Certificate, h2 bool) (int, string, error) {
	e.t.Helper()
	cfg := e.tlsConfig(tls.VersionTLS13, cert)
	cfg.ServerName = sni
	if sni == "" {
		cfg.ServerName = ""
		cfg.InsecureSkipVerify = true // no SNI: nothing to verify the name against
	}
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: h2, DisableKeepAlives: !h2}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, "https://"+e.addr("edge")+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Host = host
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// TestSNIAndHostMustAgree covers S1: a Host of a mutual domain is never served over a
// connection whose handshake ran under another policy, whatever its spelling.
func TestSNIAndHostMustAgree(t *testing.T) {
	e := domainsEnv(t)
	alice := new(e.ca.Issue("alice").TLS())
	for _, tc := range []struct {
		name      string
		sni, host string
		cert      *tls.Certificate
		want      int
	}{
		{"open SNI, mutual Host", "localhost", "api.example.com", nil, http.StatusMisdirectedRequest},
		{"open SNI, mutual Host in upper case with dot and port", "localhost", "API.Example.COM.:443", nil, http.StatusMisdirectedRequest},
		{"open SNI, wildcard mutual Host", "localhost", "v2.api.example.com", nil, http.StatusMisdirectedRequest},
		{"no SNI, mutual Host", "", "api.example.com", nil, http.StatusMisdirectedRequest},
		{"mutual SNI, mutual Host", "api.example.com", "api.example.com", alice, http.StatusOK},
		{"mutual SNI, Host spelled differently", "api.example.com", "API.EXAMPLE.COM.:443", alice, http.StatusOK},
		{"mutual SNI, wildcard Host of the same domain", "api.example.com", "v2.api.example.com", alice, http.StatusOK},
		{"mutual SNI, open Host", "api.example.com", "localhost", alice, http.StatusMisdirectedRequest},
		{"same policy, other domain: no false 421", "localhost", "www.example.com", nil, http.StatusOK},
		{"wildcard is one label only", "localhost", "a.b.api.example.com", nil, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			code, body, err := e.do(tc.sni, tc.host, "/", tc.cert, false)
			if err != nil {
				t.Fatal(err)
			}
			if code != tc.want {
				t.Fatalf("status %d, want %d: %s", code, tc.want, body)
			}
		})
	}
}

// TestMutualDomainRefusesWithoutCertificate: SNI selects the mutual policy, and its
// handshake requires a certificate.
func TestMutualDomainRefusesWithoutCertificate(t *testing.T) {
	e := domainsEnv(t)
	if _, _, err := e.do("api.example.com", "api.example.com", "/", nil, false); err == nil {
		t.Fatal("served without a client certificate")
	}
	line := e.sink.Next(t, map[string]any{"msg": "handshake", "listener": "edge", "sni": "api.example.com"})
	if line["reason"] != "no_client_cert" {
		t.Fatalf("line %v", line)
	}
}

// TestHTTP2ReuseAcrossPolicies covers S12: an HTTP/2 connection opened for the mutual
// domain cannot carry a request for a host under another policy.
func TestHTTP2ReuseAcrossPolicies(t *testing.T) {
	e := domainsEnv(t)
	alice := new(e.ca.Issue("alice").TLS())
	cfg := e.tlsConfig(tls.VersionTLS13, alice)
	cfg.ServerName = "api.example.com"
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	for _, tc := range []struct {
		host string
		want int
	}{{"api.example.com", 200}, {"localhost", 421}, {"v2.api.example.com", 200}} {
		req, _ := http.NewRequest(http.MethodGet, "https://"+e.addr("edge")+"/", nil)
		req.Host = tc.host
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.StatusCode != tc.want {
			t.Fatalf("%s: %s %d, want HTTP/2 %d", tc.host, resp.Proto, resp.StatusCode, tc.want)
		}
	}
}

// TestPathRuleAllowList: /admin/ on the mutual domain admits only CN=admin (403 with
// reason not_allowed otherwise), whatever the path's spelling; paths with dot-segments
// are refused.
func TestPathRuleAllowList(t *testing.T) {
	e := domainsEnv(t)
	alice := new(e.ca.Issue("alice").TLS())
	admin := new(e.ca.Issue("admin").TLS())
	for _, tc := range []struct {
		name string
		cert *tls.Certificate
		path string
		want int
	}{
		{"alice, /admin/", alice, "/admin/x", http.StatusForbidden},
		{"admin, /admin/", admin, "/admin/x", http.StatusOK},
		{"alice, elsewhere", alice, "/adminx", http.StatusOK},
		// The rules see the path a normalizing backend would serve.
		{"alice, dot-segments", alice, "/x/../admin/x", http.StatusBadRequest},
		{"alice, encoded dot-segments", alice, "/x/%2e%2E/admin/x", http.StatusBadRequest},
		{"alice, trailing dot", alice, "/admin/x/.", http.StatusBadRequest},
		{"alice, doubled slash", alice, "//admin//x", http.StatusForbidden},
		{"alice, encoded slash", alice, "/admin%2Fx", http.StatusForbidden},
		{"admin, doubled slash", admin, "//admin/x", http.StatusOK},
		{"alice, dots inside a name", alice, "/x/..a/...", http.StatusOK},
		// Servlet containers drop path parameters and read "..;" as "..".
		{"alice, dot-segment with parameters", alice, "/x/..;/admin/x", http.StatusBadRequest},
		{"alice, encoded dot-segment with parameters", alice, "/x/%2e%2e;a=b/admin/x", http.StatusBadRequest},
		{"alice, parameters on the rule's segment", alice, "/admin;jsessionid=1/x", http.StatusForbidden},
		{"admin, parameters on the rule's segment", admin, "/admin;jsessionid=1/x", http.StatusOK},
		{"alice, parameters elsewhere", alice, "/x;a=b", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			code, body, err := e.do("api.example.com", "api.example.com", tc.path, tc.cert, false)
			if err != nil || code != tc.want {
				t.Fatalf("status %d (%v), want %d: %s", code, err, tc.want, body)
			}
			if tc.want == http.StatusForbidden {
				line := e.sink.Next(t, map[string]any{"msg": "request", "listener": "edge", "status": float64(403)})
				if line["reason"] != "not_allowed" {
					t.Fatalf("line %v", line)
				}
			}
		})
	}
}
