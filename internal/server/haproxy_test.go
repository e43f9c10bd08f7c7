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
	"testing"

	"tlsgate/internal/pki"
	"tlsgate/internal/proxytest"
)

// freePort returns a loopback port that was free a moment ago (HAProxy needs a number).

// TestHAProxyDecodesProxyV2: HAProxy (accept-proxy) reads the PROXY v2 header tlsgate
// sends: the client's address and the SNI (authority TLV) reach its backend.
func TestHAProxyDecodesProxyV2(t *testing.T) {
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("haproxy not on PATH")
	}
	front := proxytest.FreeAddr(t)
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		cfg := fmt.Sprintf(`defaults
  mode http
  timeout connect 5s
  timeout client 5s
  timeout server 5s
frontend fe
  bind %s accept-proxy
  http-request set-header X-PP-Src %%[src]
  http-request set-header X-PP-Authority %%[fc_pp_authority]
  default_backend be
backend be
  server s1 %s
`, front, e.backend.HTTP.Addr())
		path := filepath.Join(e.dir, "haproxy.cfg")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(haproxy, "-db", "-f", path)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		proxytest.WaitAccepting(t, front)
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
