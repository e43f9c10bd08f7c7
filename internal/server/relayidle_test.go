package server_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"tlsgate/internal/pki"
	"tlsgate/internal/proxytest"
)

// TestRelayIdleTimeout: a tcp_ssl relay that goes silent after the handshake is closed
// after tcp_idle_timeout, its backend connection released, and the log line says why
// (issue 18: such relays were held for over 200 s, for ever in fact).
func TestRelayIdleTimeout(t *testing.T) {
	released := make(chan error, 1)
	backend := proxytest.Raw(t, func(c net.Conn) {
		buf := make([]byte, 64)
		for {
			n, err := c.Read(buf)
			if err != nil {
				released <- err
				return
			}
			_, _ = c.Write(buf[:n])
		}
	})
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		e.groups = fmt.Sprintf("  - {id: held, targets: [{address: %s}]}\n", backend)
		return "", "  - {id: idle, protocol: tcp_ssl, listen: 127.0.0.1:0, target_group: held, tcp_idle_timeout: 300ms,\n" +
			"     ssl: {mode: one_way, server_certificates: [site]}}\n"
	})
	c, err := tls.Dial("tcp", e.addr("idle"), e.tlsConfig(tls.VersionTLS13, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "ping"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	// Silent now. The server must end the relay; 20 s is a generous "must happen".
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("client read %v, want the relay closed by the server", err)
	}
	select {
	case <-released:
	case <-time.After(20 * time.Second):
		t.Fatal("the backend connection was not released")
	}
	line := e.sink.Next(t, map[string]any{"msg": "connection", "listener": "idle"})
	if s, _ := line["error"].(string); !strings.Contains(s, "relay idle") {
		t.Fatalf("line %v, want error relay idle", line)
	}
}

func isTimeout(err error) bool {
	ne, ok := errors.AsType[net.Error](err)
	return ok && ne.Timeout()
}
