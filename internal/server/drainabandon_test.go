package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"tlsgate/internal/pki"
)

// TestDrainAbandonsH1Exchange: when the drain deadline passes with an HTTP/1 request
// still at its backend, the backend exchange is abandoned (the backend sees its request
// cancelled) and the request logged as abandoned, rather than kept until the backend
// answers.
func TestDrainAbandonsH1Exchange(t *testing.T) {
	addr, got, cancelled := slowBackend(t)
	e := newEnv(t, pki.ECDSAP256, groupListeners(fmt.Sprintf("targets: [{address: %s}]", addr)))
	cfg := e.tlsConfig(tls.VersionTLS13, nil)
	cfg.NextProtos = []string{"http/1.1"}
	c, err := tls.Dial("tcp", e.addr("g_https"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n")
	wait(t, got, "request at the backend")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := e.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want deadline exceeded", err)
	}
	wait(t, cancelled, "backend exchange abandoned")
}
