package server_test

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tlsgate/internal/pki"
	"tlsgate/internal/porttest"
	"tlsgate/internal/proxytest"
	"tlsgate/internal/tooltest"
)

// TestHAProxyDecodesProxyV2: HAProxy (accept-proxy) reads the PROXY v2 header tlsgate
// sends: the client's address and the SNI (authority TLV) reach its backend.
func TestHAProxyDecodesProxyV2(t *testing.T) {
	haproxy := tooltest.Path(t, "haproxy")
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		cfg := fmt.Sprintf(`defaults
  mode http
  timeout connect 5s
  timeout client 5s
  timeout server 5s
frontend fe
  bind fd@3 accept-proxy
  http-request set-header X-PP-Src %%[src]
  http-request set-header X-PP-Authority %%[fc_pp_authority]
  default_backend be
backend be
  server s1 %s
`, e.backend.HTTP.Addr())
		front := startHAProxy(t, haproxy, e.dir, cfg)
		e.groups = fmt.Sprintf("  - {id: hap, targets: [{address: %s}]}\n", front)
		return "", "  - {id: pp, protocol: tcp_ssl, listen: 127.0.0.1:0, target_group: hap, proxy_protocol: v2,\n" +
			"     ssl: {mode: one_way, server_certificates: [site]}}\n"
	})
	c, err := tls.Dial("tcp", e.addr("pp"), e.tlsConfig(tls.VersionTLS13, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got echo
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	host, _, _ := net.SplitHostPort(c.LocalAddr().String())
	if got.Headers["X-Pp-Src"] != host || got.Headers["X-Pp-Authority"] != "localhost" {
		t.Fatalf("HAProxy saw src %q authority %q; want %s and localhost", got.Headers["X-Pp-Src"], got.Headers["X-Pp-Authority"], host)
	}
}

// startHAProxy runs HAProxy in the foreground with cfg (written to dir/haproxy.cfg) and
// returns the address of the listening socket it hands it as fd 3 (bind fd@3), so no one
// can take the port first. It waits until HAProxy has read cfg and bound its sockets (a
// monitor frontend it appends, on a held port, accepts); HAProxy exiting first (a bad
// config) fails the test at once with its exit status and its output. Cleanup kills it.
func startHAProxy(tb testing.TB, haproxy, dir, cfg string) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	front := ln.Addr().String()
	sock, err := ln.(*net.TCPListener).File()
	_ = ln.Close() // sock is the same socket; HAProxy's copy keeps it open
	if err != nil {
		tb.Fatal(err)
	}
	ready := porttest.Hold(tb)
	cfg += fmt.Sprintf("frontend ready\n  bind %s\n  monitor-uri /ready\n", ready)
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		_ = sock.Close()
		tb.Fatal(err)
	}
	cmd := exec.Command(haproxy, "-db", "-f", path)
	cmd.ExtraFiles = []*os.File{sock} // fd 3
	defer sock.Close()                // after the start, HAProxy alone holds the socket: its exit closes it
	proxytest.StartProcess(tb, cmd).WaitAccepting(tb, ready)
	return front
}

// TestStartHAProxyFailsWithItsOutput: an HAProxy that refuses its config fails the start
// at once, with HAProxy's own complaint, not later in the test with a refused connection.
func TestStartHAProxyFailsWithItsOutput(t *testing.T) {
	t.Parallel()
	haproxy := tooltest.Path(t, "haproxy")
	dir := t.TempDir()
	start := time.Now()
	msg := proxytest.CatchFatal(t, func(tb testing.TB) {
		startHAProxy(tb, haproxy, dir, "frontend fe\n  bind fd@3\n  no_such_keyword on\n")
	})
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the start failed after %v; want at once", took)
	}
	for _, want := range []string{"haproxy exited (exit status 1)", "unknown keyword 'no_such_keyword' in 'frontend' section"} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure %q lacks %q", msg, want)
		}
	}
}
