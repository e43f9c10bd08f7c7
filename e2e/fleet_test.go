package e2e

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"tlsgate/internal/etcdtest"
)

// TestFleetServe runs the binary in fleet mode against a real etcd: `fleet push` of the
// demo's config, `serve --config node.yaml` run from the node's directory (relative
// token, key and cache) binding 127.0.0.2, curl through it, `fleet status --json`
// (given push's --key-file too) listing the node at the revision, SIGTERM.
func TestFleetServe(t *testing.T) {
	need(t, "curl")
	e := etcdtest.Start(t)
	dir := t.TempDir()
	demo := exec.Command(bin, "demo", "--dir", dir)
	dlines := startLines(t, demo)
	waitLine(t, dlines, regexp.MustCompile(`Press Ctrl-C`))
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	keyFile := filepath.Join(dir, "fleet.key")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--etcd", e.Endpoint, "--prefix", "/tlsgate/e2e"}
	out, err := exec.Command(bin, append([]string{"fleet", "push", "--key-file", keyFile, "--config", filepath.Join(dir, "tlsgate.yaml")}, flags...)...).Output()
	if err != nil || string(out) != "revision 1\n" {
		t.Fatalf("fleet push: %v\n%s", err, out)
	}
	// The node as an operator runs it: from its directory, every path relative to
	// node.yaml (its admin token, the fleet key, the cache).
	nodeDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(nodeDir, "fleet.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(nodeDir, "admin.token"), []byte("e2e-admin-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(nodeDir, "node.yaml"), fmt.Appendf(nil, "admin: {listen: 127.0.0.2:0, token_file: admin.token}\nfleet: {etcd: [%s], prefix: /tlsgate/e2e, instance: e2e-1, key_file: fleet.key, cache_dir: cache, bind: 127.0.0.2}\n", e.Endpoint), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := exec.Command(bin, "serve", "--config", "node.yaml")
	srv.Dir = nodeDir
	lines := startLogLines(t, srv)
	seen := waitLine(t, lines, regexp.MustCompile(`"msg":"serving"`))
	addr := ""
	for _, l := range seen {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["listener"] == "https-one-way" {
			addr = fmt.Sprint(m["address"])
		}
	}
	host, port, _ := strings.Cut(addr, ":")
	if host != "127.0.0.2" {
		t.Fatalf("https-one-way listens on %q, not on the bind address:\n%s", addr, strings.Join(seen, "\n"))
	}
	curl := exec.Command("curl", "-sS", "--fail", "--cacert", filepath.Join(dir, "ca.crt"), "--resolve", "localhost:"+port+":127.0.0.2", "https://localhost:"+port+"/")
	if out, err := curl.CombinedOutput(); err != nil {
		t.Fatalf("curl through the fleet node: %v\n%s", err, out)
	}
	var rows []map[string]any
	for range 200 { // a readiness probe: the heartbeat follows the start by moments
		out, err = exec.Command(bin, append([]string{"fleet", "status", "--json", "--key-file", keyFile}, flags...)...).Output()
		if err != nil || json.Unmarshal(out, &rows) != nil {
			t.Fatalf("fleet status: %v\n%s", err, out)
		}
		if len(rows) == 1 {
			break
		}
	}
	if len(rows) != 1 || rows[0]["instance"] != "e2e-1" || rows[0]["revision"] != 1.0 || rows[0]["state"] != "ok" || rows[0]["since"] == nil || rows[0]["version"] == nil {
		t.Fatalf("fleet status: %s", out)
	}
	stopServeAndDemo(t, srv, demo, lines, dlines)
}
