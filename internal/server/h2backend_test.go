package server_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"

	"tlsgate/internal/pki"
)

// TestH2Backend: plain HTTP requests of HTTP/1.1 and HTTP/2 clients reach a group of
// protocol h2c as HTTP/2, with the identity headers (the client's forgeries stripped)
// and X-Forwarded-*, and the backend's status, headers and body come back.
func TestH2Backend(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &http.Protocols{}
	p.SetUnencryptedHTTP2(true)
	backend := &http.Server{Protocols: p, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen-Proto", r.Proto)
		w.Header().Set("X-Seen-Verify", r.Header.Get("X-Client-Verify"))
		w.Header().Set("X-Seen-Subject", r.Header.Get("X-Client-Cert-Subject"))
		w.Header().Set("X-Seen-Forwarded-Proto", r.Header.Get("X-Forwarded-Proto"))
		w.WriteHeader(http.StatusTeapot)
		_, _ = io.WriteString(w, "from h2c "+r.URL.Path)
	})}
	done := make(chan struct{})
	go func() { _ = backend.Serve(ln); close(done) }()
	t.Cleanup(func() { _ = backend.Close(); <-done })
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		e.groups = fmt.Sprintf("  - {id: h2c, protocol: h2c, targets: [{address: %s}]}\n", ln.Addr())
		return "", "  - {id: h2up, protocol: https, listen: 127.0.0.1:0, target_group: h2c,\n" +
			"     ssl: {mode: mutual, server_certificates: [site], ca_certificate: clients}}\n"
	})
	cert := e.ca.Issue("alice").TLS()
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "HTTP/1.1", true: "HTTP/2"}[h2], func(t *testing.T) {
			resp, body, err := e.request("h2up", e.tlsConfig(tls.VersionTLS13, &cert), http.Header{"X-Client-Cert-Subject": {"CN=forged"}}, h2)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusTeapot || string(body) != "from h2c /x" {
				t.Fatalf("%d %q", resp.StatusCode, body)
			}
			for k, want := range map[string]string{"X-Seen-Proto": "HTTP/2.0", "X-Seen-Verify": "SUCCESS", "X-Seen-Forwarded-Proto": "https"} {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if s := resp.Header.Get("X-Seen-Subject"); s == "CN=forged" || s == "" {
				t.Errorf("backend saw subject %q", s)
			}
		})
	}
}
