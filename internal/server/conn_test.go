package server_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"tlsgate/internal/clientauth"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
)

// TestWebSocketUpgrade: an Upgrade request through the HTTPS listener switches protocols
// and then relays bytes both ways.
func TestWebSocketUpgrade(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	c, err := tls.Dial("tcp", e.addr("mutual"), e.tlsConfig(tls.VersionTLS13, new(e.ca.Issue("alice").TLS())))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	for _, msg := range []string{"ping\n", "pong\n"} {
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		got, err := br.ReadString('\n')
		if err != nil || got != msg {
			t.Fatalf("echo %q, %v; want %q", got, err, msg)
		}
	}
}

// TestPlainTCP: a tcp listener relays bytes without TLS.
func TestPlainTCP(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		return "", "  - {id: raw, protocol: tcp, listen: 127.0.0.1:0, target_group: echo}\n"
	})
	c, err := net.Dial("tcp", e.addr("raw"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "hi"); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "hi" {
		t.Fatalf("echo %q, %v", got, err)
	}
	line := e.sink.Next(t, map[string]any{"msg": "connection", "listener": "raw"})
	if line["bytes_in"] != float64(2) || line["bytes_out"] != float64(2) {
		t.Fatalf("line %v", line)
	}
}

// TestHandshakeTimeout: a client that connects and says nothing is dropped after the
// listener's handshake_timeout, with the reason in the log.
func TestHandshakeTimeout(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		return "", "  - {id: quick, protocol: tcp_ssl, listen: 127.0.0.1:0, target_group: echo, handshake_timeout: 50ms,\n" +
			"     ssl: {mode: one_way, server_certificates: [site]}}\n"
	})
	c, err := net.Dial("tcp", e.addr("quick"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.ReadAll(c); err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		t.Fatal(err)
	}
	line := e.sink.Next(t, map[string]any{"msg": "handshake", "listener": "quick"})
	if line["reason"] != "handshake_timeout" {
		t.Fatalf("line %v", line)
	}
}

// openRelay opens a TCP SSL relay as alice and proves it works.
func openRelay(t *testing.T, e *env) *tls.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", e.addr("tcpssl"), e.tlsConfig(tls.VersionTLS13, new(e.ca.Issue("alice").TLS())))
	if err != nil {
		t.Fatal(err)
	}
	echoOnce(t, c, "a")
	return c
}

func echoOnce(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, len(msg))
	if _, err := io.ReadFull(c, b); err != nil || string(b) != msg {
		t.Fatalf("echo %q, %v", b, err)
	}
}

// waitRefused dials until the listener refuses, proving it stopped accepting.
func waitRefused(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		c.Close()
	}
	t.Fatal("listener still accepting during shutdown")
}

// TestDrain: Shutdown stops accepting at once but lets an open relay finish.
func TestDrain(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	c := openRelay(t, e)
	addr := e.addr("tcpssl")
	done := make(chan error, 1)
	go func() { done <- e.srv.Shutdown(context.Background()) }()
	waitRefused(t, addr)
	echoOnce(t, c, "b") // still relaying
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) while a relay was open", err)
	default:
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(c); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestConnectionsOpen: tlsgate_connections_open{listener} counts the client connections
// a listener holds (SPEC §5, issue 2): two relays held open count 2, a kept-alive HTTPS
// connection 1; when they end (a client closing, a refused handshake, the drain) every
// one is counted out again.
func TestConnectionsOpen(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	open := func(id string) float64 { return testutil.ToFloat64(e.metrics.ConnectionsOpen.WithLabelValues(id)) }
	first, second := openRelay(t, e), openRelay(t, e)
	tr := &http.Transport{TLSClientConfig: e.tlsConfig(tls.VersionTLS13, nil)}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("https://" + e.addr("one_way") + "/x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close() // the connection stays open, idle in tr
	if n := open("tcpssl"); n != 2 {
		t.Fatalf("connections_open{tcpssl} = %v with two relays open, want 2", n)
	}
	if n := open("one_way"); n != 1 {
		t.Fatalf("connections_open{one_way} = %v with one kept-alive connection, want 1", n)
	}
	if _, err := e.get("mutual", tls.VersionTLS12, nil, nil, false); err == nil {
		t.Fatal("mutual listener served a client without a certificate")
	}
	first.Close()
	defer second.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond) // the drain closes second and the idle one
	defer cancel()
	_ = e.srv.Shutdown(ctx)
	for _, id := range []string{"tcpssl", "one_way", "mutual"} {
		if n := open(id); n != 0 {
			t.Errorf("connections_open{%s} = %v after every connection ended, want 0", id, n)
		}
	}
}

// TestDrainDeadline: what is still open when the drain deadline passes is closed.
func TestDrainDeadline(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	c := openRelay(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := e.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want deadline exceeded", err)
	}
	if _, err := io.ReadAll(c); err != nil && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("read after forced close: %v", err)
	}
}

// TestMaxConnections: beyond max_connections a connection is closed at once and logged.
func TestMaxConnections(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		return "", "  - {id: one, protocol: tcp, listen: 127.0.0.1:0, target_group: echo, max_connections: 1}\n"
	})
	first, err := net.Dial("tcp", e.addr("one"))
	if err != nil {
		t.Fatal(err)
	}
	echoOnce(t, first, "a") // the first is being relayed
	second, err := net.Dial("tcp", e.addr("one"))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(second); err != nil || len(b) != 0 {
		t.Fatalf("second connection: %q, %v; want closed at once", b, err)
	}
	line := e.sink.Next(t, map[string]any{"msg": "connection", "listener": "one"})
	if !strings.Contains(fmt.Sprint(line["error"]), "max_connections (1) reached") {
		t.Fatalf("line %v", line)
	}
	first.Close()
}

// TestClientChainLimits: a client sending more certificates than max_client_chain is
// refused with reason too_large before its chain is verified.
func TestClientChainLimits(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	bob := e.inter.Issue("bob").TLS()
	for range 5 {
		bob.Certificate = append(bob.Certificate, e.inter.Cert.Raw)
	}
	for _, id := range []string{"mutual", "optional"} {
		if _, err := e.get(id, tls.VersionTLS13, &bob, nil, false); err == nil {
			t.Fatalf("%s: a 7-certificate chain was accepted", id)
		}
		line := e.sink.Next(t, map[string]any{"msg": "handshake", "listener": id})
		if line["reason"] != "too_large" {
			t.Fatalf("%s: line %v", id, line)
		}
	}
}

// TestL4AllowList: a tcp_ssl listener's ssl.allow refuses a verified client that is not
// on it, with reason not_allowed, and admits one that is.
func TestL4AllowList(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		return "", "  - {id: ops, protocol: tcp_ssl, listen: 127.0.0.1:0, target_group: echo,\n" +
			"     ssl: {mode: mutual, server_certificates: [site], ca_certificate: clients, allow: {uri: [\"spiffe://example.org/ops/*\"]}}}\n"
	})
	for _, tc := range []struct {
		name string
		leaf *pkitest.Leaf
		ok   bool
	}{
		{"on the list", e.ca.Issue("ops", pkitest.URI("spiffe://example.org/ops/deployer")), true},
		{"deeper path than * allows", e.ca.Issue("deep", pkitest.URI("spiffe://example.org/ops/a/b")), false},
		{"not on the list", e.ca.Issue("dev", pkitest.URI("spiffe://example.org/dev/x")), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			c, err := tls.Dial("tcp", e.addr("ops"), e.tlsConfig(tls.VersionTLS13, new(tc.leaf.TLS())))
			if err == nil {
				_, err = c.Write([]byte("x"))
				if err == nil {
					_, err = io.ReadFull(c, make([]byte, 1))
				}
				c.Close()
			}
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok=%v", err, tc.ok)
			}
			if !tc.ok {
				if line := e.sink.Next(t, map[string]any{"msg": "handshake", "listener": "ops"}); line["reason"] != "not_allowed" {
					t.Fatalf("line %v", line)
				}
				if want := specAlert(clientauth.NotAllowed, tls.VersionTLS13); !strings.Contains(err.Error(), "remote error: tls: "+want) {
					t.Fatalf("client error %q, want the alert %q of SPEC §1", err, want)
				}
			}
		})
	}
}

// TestIdleTimeout: an idle keep-alive HTTP connection is closed after idle_timeout.
func TestIdleTimeout(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256, briefListener("idle_timeout: 50ms"))
	h := dialH1(t, e, "brief")
	h.send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
	h.read(http.MethodGet)
	// The server closes the idle connection by itself: the read ends with EOF.
	if _, err := h.br.ReadByte(); err != io.EOF {
		t.Fatalf("read on the idle connection: %v, want EOF", err)
	}
}

// TestDrainTimeoutSetting: drain_timeout sets how long a drain waits. The running
// config's value is what a shutdown takes (Server.DrainTimeout, which `serve` reads on
// SIGTERM), and a listener a reload removes is drained for the new config's value: a
// relay left open on it is cut after 1 s, where the old fixed 30 s kept it.
func TestDrainTimeoutSetting(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		e.top = "drain_timeout: 5s"
		return "", ""
	})
	if d := e.srv.DrainTimeout(); d != 5*time.Second {
		t.Fatalf("DrainTimeout() = %v, want 5s", d)
	}
	c := openRelay(t, e)
	cfg, err := os.ReadFile(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	const tcpssl = "  - {id: tcpssl, protocol: tcp_ssl, listen: 127.0.0.1:0, target_group: echo,\n" +
		"     ssl: {mode: mutual, server_certificates: [site], ca_certificate: clients}}\n"
	next := strings.Replace(strings.Replace(string(cfg), tcpssl, "", 1), "drain_timeout: 5s", "drain_timeout: 1s", 1)
	if next == string(cfg) || strings.Contains(next, "id: tcpssl") {
		t.Fatal("the test's config edit did not apply")
	}
	e.writeFile("tlsgate.yaml", []byte(next))
	if err := e.waitReload(); err != nil {
		t.Fatal(err)
	}
	if d := e.srv.DrainTimeout(); d != time.Second {
		t.Fatalf("DrainTimeout() after the reload = %v, want 1s", d)
	}
	// The relay stays until the removed listener's drain deadline, then is closed.
	_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, err = io.ReadAll(c)
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		t.Fatal("the relay of the removed listener was still open 15 s after the reload (drain_timeout 1s)")
	}
}
