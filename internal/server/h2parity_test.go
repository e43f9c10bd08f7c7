package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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

// TestDrainAbandonsAs503: a request still at its backend when the drain deadline passes
// is abandoned and logged with status 503 and "request abandoned" (httpproxy's "503
// service unavailable: shutting down"), for a group of protocol h2c as for http1, from
// an HTTP/1.1 client and from an HTTP/2 one. Before, the h2c group's was a 502 "context
// canceled" (counted as a backend failure), and an HTTP/2 client's was logged 499
// "client closed request" for either group: the drain closed its connection before it
// ended the requests. The client's connection is closed by the drain before it could
// read the answer.
func TestDrainAbandonsAs503(t *testing.T) {
	for _, protocol := range []string{"http1", "h2c"} {
		for _, alpn := range []string{"http/1.1", "h2"} {
			t.Run(protocol+" from "+alpn, func(t *testing.T) {
				addr, got, cancelled := slowBackend(t)
				e := newEnv(t, pki.ECDSAP256, groupListeners(fmt.Sprintf("protocol: %s, targets: [{address: %s}]", protocol, addr)))
				cfg := e.tlsConfig(tls.VersionTLS13, nil)
				cfg.NextProtos = []string{alpn}
				if alpn == "h2" {
					tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
					defer tr.CloseIdleConnections()
					go func() {
						if resp, err := (&http.Client{Transport: tr}).Get("https://" + e.addr("g_https") + "/slow"); err == nil {
							resp.Body.Close()
						}
					}()
				} else {
					c, err := tls.Dial("tcp", e.addr("g_https"), cfg)
					if err != nil {
						t.Fatal(err)
					}
					defer c.Close()
					_, _ = io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n")
				}
				wait(t, got, "request at the backend")
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				defer cancel()
				if err := e.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("Shutdown: %v, want deadline exceeded", err)
				}
				wait(t, cancelled, "backend exchange abandoned")
				line := e.sink.Next(t, map[string]any{"msg": "request", "listener": "g_https"})
				if line["status"] != float64(http.StatusServiceUnavailable) || !strings.Contains(fmt.Sprint(line["error"]), "request abandoned") {
					t.Fatalf("logged status %v error %q, want 503 and request abandoned", line["status"], line["error"])
				}
			})
		}
	}
}
