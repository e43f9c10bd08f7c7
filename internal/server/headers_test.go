package server_test

import (
	"crypto/tls"
	"net/http"
	"testing"

	"tlsgate/internal/pki"
)

// spoofed is every identity header a client might try, in several spellings.
func spoofed() http.Header {
	h := http.Header{}
	for _, name := range []string{
		"X-Client-Verify", "X-Client-Cert", "X-Client-Cert-Subject", "X-Client-Cert-Fingerprint",
		"x-client-cert-san-uri", "X_Client_Verify", "X-Forwarded-Client-Cert",
		"X-Forwarded-Tls-Client-Cert", "X-Forwarded-Tls-Client-Cert-Info", "X-SSL-Client-Verify",
		"X-SSL-Client-S-DN", "Ssl-Client-Cert", "Ssl-Client-Verify", "Client-Cert", "Client-Cert-Chain",
		"X-Amzn-Mtls-Clientcert",
	} {
		h[name] = []string{"SUCCESS", "CN=admin"}
	}
	return h
}

// TestSpoofedIdentityHeaders sends every known identity header on every HTTP entry path
// (one-way, mutual and optional HTTPS over HTTP/1.1 and HTTP/2, plain HTTP) and also
// names them in Connection:. The backend must see only tlsgate's own values.
func TestSpoofedIdentityHeaders(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	alice := e.ca.Issue("alice").TLS()
	cases := []struct {
		name     string
		listener string
		version  uint16
		cert     *tls.Certificate
		h2       bool
		verify   string // X-Client-Verify the backend must see; "" = absent
	}{
		{"one-way h1", "one_way", tls.VersionTLS13, nil, false, "NONE"},
		{"one-way h2", "one_way", tls.VersionTLS13, nil, true, "NONE"},
		{"mutual h1", "mutual", tls.VersionTLS12, &alice, false, "SUCCESS"},
		{"mutual h2", "mutual", tls.VersionTLS13, &alice, true, "SUCCESS"},
		{"optional without certificate", "optional", tls.VersionTLS13, nil, true, "NONE"},
		{"plain http", "plain", 0, nil, false, ""},
	}
	for _, tc := range cases {
		for _, conn := range []bool{false, true} {
			if conn && tc.h2 {
				continue // HTTP/2 has no Connection header; Go's client refuses to send one
			}
			name := tc.name
			if conn {
				name += ", listed in Connection"
			}
			t.Run(name, func(t *testing.T) {
				e.t = t
				h := spoofed()
				if conn {
					h["Connection"] = []string{"keep-alive, X-Client-Verify, X-Forwarded-For, X-Client-Cert-Subject"}
				}
				got, err := e.get(tc.listener, tc.version, tc.cert, h, tc.h2)
				if err != nil {
					t.Fatal(err)
				}
				for name, v := range got.Headers {
					switch {
					case name == "X-Client-Verify":
						if v != tc.verify {
							t.Errorf("X-Client-Verify = %q, want %q", v, tc.verify)
						}
					case v == "SUCCESS" || v == "CN=admin" || v == "SUCCESS, CN=admin":
						t.Errorf("spoofed %s: %q reached the backend", name, v)
					}
				}
				if _, ok := got.Headers["X-Client-Verify"]; !ok && tc.verify != "" {
					t.Errorf("X-Client-Verify missing, want %q", tc.verify)
				}
				if tc.verify == "SUCCESS" && got.Headers["X-Client-Cert-Subject"] != "CN=alice" {
					t.Errorf("subject = %q, want CN=alice", got.Headers["X-Client-Cert-Subject"])
				}
				if got.Headers["X-Forwarded-For"] != "127.0.0.1" {
					t.Errorf("X-Forwarded-For = %q, want 127.0.0.1", got.Headers["X-Forwarded-For"])
				}
			})
		}
	}
}

// TestHTTP2 checks that HTTPS listeners speak HTTP/2 to clients that offer it.
func TestHTTP2(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	tr := &http.Transport{TLSClientConfig: e.tlsConfig(tls.VersionTLS13, nil), ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("https://" + e.addr("one_way") + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("client spoke %s, want HTTP/2", resp.Proto)
	}
	line := e.sink.Next(t, map[string]any{"msg": "request", "listener": "one_way"})
	if line["alpn"] != "h2" || line["status"] != float64(200) {
		t.Fatalf("request line = %v", line)
	}
}
