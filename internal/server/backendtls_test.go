package server_test

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
)

// TestBackendTLS: a target group with tls re-encrypts to an HTTPS backend, verifies it
// against the CA bundle and presents tlsgate's client certificate (mTLS origination);
// a backend whose certificate does not match the server name gets no request.
func TestBackendTLS(t *testing.T) {
	var backendCA *pkitest.CA
	seen := make(chan string, 4)
	var backend *httptest.Server
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		backendCA = pkitest.New(t, "backend CA", pki.ECDSAP256)
		pkitest.Write(t, e.dir, "backend-ca.crt", backendCA.PEM())
		e.ca.Issue("tlsgate-origin").WritePair(t, e.dir, "origin")
		backend = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if len(r.TLS.PeerCertificates) > 0 {
				seen <- r.TLS.PeerCertificates[0].Subject.CommonName
			}
		}))
		backend.TLS = &tls.Config{
			Certificates: []tls.Certificate{backendCA.Issue("backend.internal", pkitest.Server("backend.internal")).TLS()},
			ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: e.ca.Pool(),
		}
		backend.StartTLS()
		t.Cleanup(backend.Close)
		addr := backend.Listener.Addr().String()
		e.groups = fmt.Sprintf("  - {id: secure, targets: [{address: %s}], tls: {ca_certificate: backend_ca, server_name: backend.internal, client_certificate: origin}}\n", addr) +
			fmt.Sprintf("  - {id: wrongname, targets: [{address: %s}], tls: {ca_certificate: backend_ca, server_name: other.internal, client_certificate: origin}}\n", addr)
		return "  - {id: backend_ca, ca: backend-ca.crt}\n  - {id: origin, cert: origin.crt, key: origin.key}\n",
			"  - {id: reenc, protocol: https, listen: 127.0.0.1:0, target_group: secure, ssl: {mode: one_way, server_certificates: [site]}}\n" +
				"  - {id: reenc_bad, protocol: https, listen: 127.0.0.1:0, target_group: wrongname, ssl: {mode: one_way, server_certificates: [site]}}\n"
	})
	get := func(id string) int {
		tr := &http.Transport{TLSClientConfig: e.tlsConfig(tls.VersionTLS13, nil)}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get("https://" + e.addr(id) + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("reenc"); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if cn := <-seen; cn != "tlsgate-origin" {
		t.Fatalf("backend saw client %q", cn)
	}
	if code := get("reenc_bad"); code != http.StatusBadGateway {
		t.Fatalf("backend with the wrong name: status %d, want 502", code)
	}
}

// TestHealthCheckOverBackendTLS: an https health check of a re-encrypting group
// handshakes as its requests do, presenting tlsgate's client certificate to a backend
// that requires one, so the target stays up; checks that handshake without it were
// refused and marked every such target down (503 for every request).
func TestHealthCheckOverBackendTLS(t *testing.T) {
	checked := make(chan string, 64)
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		backendCA := pkitest.New(t, "backend CA", pki.ECDSAP256)
		pkitest.Write(t, e.dir, "backend-ca.crt", backendCA.PEM())
		e.ca.Issue("tlsgate-origin").WritePair(t, e.dir, "origin")
		backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.UserAgent() == "tlsgate-health-check" {
				select {
				case checked <- r.TLS.PeerCertificates[0].Subject.CommonName:
				default:
				}
			}
		}))
		backend.TLS = &tls.Config{
			Certificates: []tls.Certificate{backendCA.Issue("backend.internal", pkitest.Server("backend.internal")).TLS()},
			ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: e.ca.Pool(),
		}
		backend.StartTLS()
		t.Cleanup(backend.Close)
		e.groups = fmt.Sprintf("  - {id: secure, targets: [{address: %s}], tls: {ca_certificate: backend_ca, server_name: backend.internal, client_certificate: origin},\n"+
			"     health_check: {protocol: https, path: /healthz, interval: 100ms, timeout: 100ms, unhealthy_threshold: 5}}\n", backend.Listener.Addr())
		return "  - {id: backend_ca, ca: backend-ca.crt}\n  - {id: origin, cert: origin.crt, key: origin.key}\n",
			"  - {id: reenc, protocol: https, listen: 127.0.0.1:0, target_group: secure, ssl: {mode: one_way, server_certificates: [site]}}\n"
	})
	for range 3 { // three rounds of checks reached the backend over mutual TLS
		select {
		case cn := <-checked:
			if cn != "tlsgate-origin" {
				t.Fatalf("health check presented %q", cn)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no health check reached the backend")
		}
	}
	tr := &http.Transport{TLSClientConfig: e.tlsConfig(tls.VersionTLS13, nil)}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("https://" + e.addr("reenc") + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: the target was marked down", resp.StatusCode)
	}
}
