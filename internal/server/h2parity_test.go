package server_test

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
	"tlsgate/internal/proxytest"
)

// TestH2HandshakeFailureEjects (issue 12's outlier detection, for a group of protocol
// h2): a target that accepts TCP but fails every TLS handshake (it closes at once) is
// reported to outlier detection as an HTTP/1.1 group's is: 20 requests all succeed, the
// failed connect going to the other target, and the bad target is connected to exactly
// consecutive_failures (5) times, then ejected. Before, only a failed TCP connect was
// reported: the bad target was tried on every request that picked it (10 of 20).
func TestH2HandshakeFailureEjects(t *testing.T) {
	var seen atomic.Int32
	bad := proxytest.Raw(t, func(c net.Conn) {
		seen.Add(1)
		_ = c.Close()
	})
	live := &named{name: "live"}
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		backendCA := pkitest.New(t, "backend CA", pki.ECDSAP256)
		pkitest.Write(t, e.dir, "backend-ca.crt", backendCA.PEM())
		srv := httptest.NewUnstartedServer(live)
		srv.EnableHTTP2 = true
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{backendCA.Issue("backend.internal", pkitest.Server("backend.internal")).TLS()}}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		live.addr = srv.Listener.Addr().String()
		_, listeners := groupListeners(fmt.Sprintf("protocol: h2, tls: {ca_certificate: backend_ca, server_name: backend.internal}, "+
			"outlier: {base_ejection: 1h}, targets: [{address: %s}, {address: %s}]", bad, live.addr))(e)
		return "  - {id: backend_ca, ca: backend-ca.crt}\n", listeners
	})
	if got := e.statuses("g_https", 20); got[http.StatusOK] != 20 {
		t.Fatalf("statuses %v, want 20 × 200", got)
	}
	if n := seen.Load(); n != 5 {
		t.Fatalf("the target failing its handshakes got %d connections, want 5 (then ejected)", n)
	}
	if n := live.hits.Load(); n != 20 {
		t.Fatalf("the live target served %d requests, want 20", n)
	}
}
