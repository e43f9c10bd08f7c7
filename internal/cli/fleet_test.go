package cli

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tlsgate/internal/etcdtest"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
)

// TestFleetPushPull drives the fleet commands against a real etcd: an invalid config is
// refused with its problems and stores nothing; a valid one round-trips through pull;
// --expect-revision is a compare-and-swap; status of a fleet without nodes is empty.
func TestFleetPushPull(t *testing.T) {
	e := etcdtest.Start(t)
	dir := t.TempDir()
	ca := pkitest.New(t, "ca", pki.ECDSAP256)
	ca.Issue("site", pkitest.Server("localhost")).WritePair(t, dir, "server")
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	keyFile := pkitest.Write(t, dir, "fleet.key", key)
	good := pkitest.Write(t, dir, "good.yaml", []byte(`certificates:
  - {id: site, cert: server.crt, key: server.key}
target_groups:
  - {id: web, targets: [{address: 127.0.0.1:9}]}
listeners:
  - {id: web, protocol: https, listen: 127.0.0.1:0, target_group: web,
     ssl: {mode: one_way, server_certificates: [site]}}
`))
	bad := pkitest.Write(t, dir, "bad.yaml", []byte(`certificates:
  - {id: site, cert: missing.crt, key: server.key}
listeners:
  - {id: web, protocol: https, listen: 127.0.0.1:0, target_group: nowhere,
     ssl: {mode: one_way, server_certificates: [site]}}
`))
	flags := []string{"--etcd", e.Endpoint, "--prefix", "/tlsgate/cli"}
	push := func(cfg string, extra ...string) (int, string, string) {
		return run(append(append([]string{"fleet", "push", "--key-file", keyFile, "--config", cfg}, flags...), extra...)...)
	}

	code, out, errOut := push(bad)
	if code != ExitFailure || !strings.Contains(errOut, "bad.yaml:4: listeners[0].target_group") || out != "" {
		t.Fatalf("invalid push: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// status takes push's flags as they are, --key-file included.
	code, out, _ = run(append([]string{"fleet", "status", "--json", "--key-file", keyFile}, flags...)...)
	if code != ExitOK || strings.TrimSpace(out) != "[]" {
		t.Fatalf("status: %d %q", code, out)
	}
	if code, out, errOut = push(good); code != ExitOK || out != "revision 1\n" {
		t.Fatalf("push: exit %d, %q %q", code, out, errOut)
	}
	if code, _, errOut = push(good, "--expect-revision", "0"); code != ExitFailure || !strings.Contains(errOut, "at revision 1, not 0") {
		t.Fatalf("stale compare-and-swap: exit %d, %q", code, errOut)
	}
	if code, out, _ = push(good, "--expect-revision", "1"); code != ExitOK || out != "revision 2\n" {
		t.Fatalf("compare-and-swap: exit %d, %q", code, out)
	}
	pulled := filepath.Join(dir, "pulled")
	if code, _, errOut = run(append([]string{"fleet", "pull", "--key-file", keyFile, "--dir", pulled}, flags...)...); code != ExitOK {
		t.Fatalf("pull: %d %s", code, errOut)
	}
	for _, f := range []string{"config.yaml", "server.crt", "server.key"} {
		want, _ := os.ReadFile(filepath.Join(dir, strings.Replace(f, "config.yaml", "good.yaml", 1)))
		got, err := os.ReadFile(filepath.Join(pulled, f))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("pulled %s differs: %v", f, err)
		}
		if fi, err := os.Stat(filepath.Join(pulled, f)); err == nil && fi.Mode().Perm() != 0o600 {
			t.Errorf("pulled %s is %v, want 0600", f, fi.Mode().Perm())
		}
	}
	if code, _, errOut = run("check", "--config", filepath.Join(pulled, "config.yaml")); code != ExitOK {
		t.Errorf("the pulled config does not check: %s", errOut)
	}
	var rows []map[string]any
	if code, out, _ = run(append([]string{"fleet", "status", "--json"}, flags...)...); code != ExitOK || json.Unmarshal([]byte(out), &rows) != nil {
		t.Fatalf("status --json: %d %q", code, out)
	}
}

// TestFleetEtcdUnreachable: a fleet command whose etcd does not answer fails with exit
// 1 and one line naming the --etcd endpoint, not a bare context error.
func TestFleetEtcdUnreachable(t *testing.T) {
	defer func(d time.Duration) { commandTimeout = d }(commandTimeout)
	commandTimeout = 500 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	code, _, errOut := run("fleet", "status", "--etcd", addr, "--prefix", "/tlsgate/none")
	if code != ExitFailure || !strings.Contains(errOut, "etcd "+addr+" (--etcd) did not answer") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Fatalf("status against a dead etcd: exit %d, stderr %q", code, errOut)
	}
}
