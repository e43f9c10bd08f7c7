package server_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"tlsgate/internal/pki"
)

// briefListener is an HTTPS listener with the given timeouts, on group web.
func briefListener(timeouts string) func(e *env) (string, string) {
	return func(e *env) (string, string) {
		return "", "  - {id: brief, protocol: https, listen: 127.0.0.1:0, target_group: web, " + timeouts + ",\n" +
			"     ssl: {mode: one_way, server_certificates: [site]}}\n"
	}
}

// closedWithin reports whether the server closes c (EOF or reset) within 10 s.
func closedWithin(t *testing.T, c net.Conn, br *bufio.Reader) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := br.ReadByte()
	if ne, ok := errors.AsType[net.Error](err); err == nil || ok && ne.Timeout() {
		t.Fatalf("read: %v; want the server to close the connection (header_timeout)", err)
	}
}

// TestH1HeaderTimeout: an HTTP/1 request header that never ends is cut at
// header_timeout (here 200 ms), not at idle_timeout (1 h), on a connection's first
// request and on a kept-alive one. The header timeout is armed lazily, when a read of
// the header waits on the socket (listener/deadline.go).
func TestH1HeaderTimeout(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256, briefListener("header_timeout: 200ms, idle_timeout: 1h"))
	for _, served := range []bool{false, true} {
		name := map[bool]string{false: "first request", true: "after a request"}[served]
		t.Run(name, func(t *testing.T) {
			h := dialH1(t, e, "brief")
			if served {
				h.send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
				h.read(http.MethodGet)
			}
			h.send("GET / HTTP/1.1\r\nHost: localhost\r\n")
			closedWithin(t, h.c, h.br)
		})
	}
}

// TestUpgradeOutlivesTimeouts: a WebSocket relay may stay quiet past idle_timeout and
// header_timeout: the deadlines the lazy setters leave armed after a request without a
// body are cleared when the connection is upgraded.
func TestUpgradeOutlivesTimeouts(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256, briefListener("header_timeout: 100ms, idle_timeout: 100ms"))
	h := dialH1(t, e, "brief")
	c, br := h.c, h.br
	// A plain request first: its idle wait and header leave their deadlines armed.
	h.send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
	h.read(http.MethodGet)
	h.send("GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v, %v; want 101", resp, err)
	}
	// Quiet for several times both timeouts: what is measured is that nothing ends.
	time.Sleep(600 * time.Millisecond)
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, err := br.ReadString('\n'); err != nil || got != "ping\n" {
		t.Fatalf("echo after a quiet spell: %q, %v; want the relay open", got, err)
	}
}

// TestH1AfterStay: a kept-alive connection whose next request comes after the worker
// stopped waiting for it (listener/stay.go: 1 s) is served by the idle wait, and one
// whose next request comes sooner by the worker; both on one connection.
func TestH1AfterStay(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	c := dialH1(t, e, "one_way")
	for i, pause := range []time.Duration{0, 0, 1500 * time.Millisecond, 0} {
		time.Sleep(pause) // the behaviour under test: a next request after the window
		c.send("GET /again HTTP/1.1\r\nHost: localhost\r\n\r\n")
		if got := c.read(http.MethodGet); got.status != http.StatusOK {
			t.Fatalf("request %d (after %v): %+v", i, pause, got)
		}
	}
}
