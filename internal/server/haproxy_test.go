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
)

// TestHAProxyDecodesProxyV2: HAProxy (accept-proxy) reads the PROXY v2 header tlsgate
// sends: the client's address and the SNI (authority TLV) reach its backend. HAProxy
// is handed its listening socket (bind fd@3), so no one can take the port first.
func TestHAProxyDecodesProxyV2(t *testing.T) {
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("haproxy not on PATH")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	front := ln.Addr().String()
	sock, err := ln.(*net.TCPListener).File()
	_ = ln.Close() // sock is the same socket; HAProxy's copy keeps it open
	if err != nil {
		t.Fatal(err)
	}
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
		path := filepath.Join(e.dir, "haproxy.cfg")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(haproxy, "-db", "-f", path)
		cmd.ExtraFiles = []*os.File{sock} // fd 3
		err := cmd.Start()
		_ = sock.Close() // HAProxy alone holds the socket: its exit closes it
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
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
