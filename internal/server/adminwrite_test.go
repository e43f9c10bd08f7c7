package server_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
	"tlsgate/internal/server"
)

// TestAdminWritesKeepTheFile: changes through the API keep the operator's comments and
// the file's mode, write no defaults in, and keep the last five versions as FILE.1–.5.
func TestAdminWritesKeepTheFile(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		pkitest.Write(t, e.dir, "admin.token", []byte(adminToken+"\n"))
		e.top = "# edge gateway — owned by the platform team\nadmin: {listen: 127.0.0.1:0, token_file: admin.token}   # loopback only"
		return "", ""
	})
	if err := os.Chmod(e.cfgPath, 0o640); err != nil {
		t.Fatal(err)
	}
	var versions [][]byte
	for i := range 6 {
		before, _ := os.ReadFile(e.cfgPath)
		versions = append(versions, before)
		code, body := e.call("POST", "/api/v1/target_groups/web/targets", map[string]any{"address": fmt.Sprintf("127.0.0.1:%d", 1000+i), "weight": 0}, adminToken)
		if code != http.StatusCreated {
			t.Fatalf("change %d: %d %v", i, code, body)
		}
	}
	got, _ := os.ReadFile(e.cfgPath)
	for _, want := range []string{"# edge gateway — owned by the platform team\n", "# loopback only", "127.0.0.1:1005"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("config lost %q:\n%s", want, got)
		}
	}
	for _, unwanted := range []string{"scheduler:", "handshake_timeout:", "crl_policy:", "policy: tls12-modern"} {
		if strings.Contains(string(got), unwanted) {
			t.Errorf("config gained the default %q:\n%s", unwanted, got)
		}
	}
	if fi, err := os.Stat(e.cfgPath); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("config mode after writes: %v %v, want 0640", fi.Mode(), err)
	}
	for n := 1; n <= server.Backups; n++ {
		b, err := os.ReadFile(fmt.Sprintf("%s.%d", e.cfgPath, n))
		if err != nil || string(b) != string(versions[len(versions)-n]) {
			t.Fatalf("backup .%d: %v, want the version %d changes back", n, err, n)
		}
		if fi, _ := os.Stat(fmt.Sprintf("%s.%d", e.cfgPath, n)); fi.Mode().Perm() != 0o640 {
			t.Fatalf("backup .%d mode %v", n, fi.Mode())
		}
	}
	if _, err := os.Stat(e.cfgPath + ".6"); err == nil {
		t.Fatal("a sixth backup was kept")
	}
}

// TestAdminReadOnlyWithoutAuth: an admin listener without token, mutual TLS or unix
// socket serves reads but refuses every change, and check warns about it.
func TestAdminReadOnlyWithoutAuth(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		e.top = "admin: {listen: 127.0.0.1:0}"
		return "", ""
	})
	if code, _ := e.call("GET", "/api/v1/target_groups/web", nil, ""); code != http.StatusOK {
		t.Fatalf("read: %d", code)
	}
	before, _ := os.ReadFile(e.cfgPath)
	for _, m := range []string{"POST", "DELETE"} {
		code, body := e.call(m, "/api/v1/denylist", map[string]any{"serial": "AB"}, "")
		if m == "DELETE" {
			code, body = e.call(m, "/api/v1/target_groups/web", nil, "")
		}
		if code != http.StatusForbidden || !strings.Contains(toJSON(body), "read-only") {
			t.Fatalf("%s without authentication: %d %v", m, code, body)
		}
	}
	if after, _ := os.ReadFile(e.cfgPath); string(after) != string(before) {
		t.Fatal("a refused change was written")
	}
	ws, err := server.Check(e.cfgPath)
	if err != nil || !strings.Contains(ws.Error(), "admin.listen: warning: no token_file, ssl or unix socket: the management API is read-only") {
		t.Fatalf("check warnings %v, %v", ws, err)
	}
}

// TestAdminUnixSocket: admin.listen: unix:PATH makes a 0600 socket through which changes
// are accepted without a token.
func TestAdminUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "admin.sock")
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		e.top = "admin: {listen: \"unix:" + sock + "\"}"
		return "", ""
	})
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket %v %v, want a 0600 socket", fi.Mode(), err)
	}
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := client.Post("http://tlsgate/api/v1/denylist", "application/json", strings.NewReader(`{"serial":"AB:CD"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("change through the socket: %d", resp.StatusCode)
	}
	if ws, err := server.Check(e.cfgPath); err != nil || len(ws) != 0 {
		t.Fatalf("check: %v %v", ws, err)
	}
}
