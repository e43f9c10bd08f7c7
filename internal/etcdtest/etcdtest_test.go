package etcdtest

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tlsgate/internal/porttest"
	"tlsgate/internal/proxytest"
)

// TestStartFailsWithEtcdOutput: an etcd that cannot start (its peer port is taken)
// fails the test at once, with etcd's own complaint and its exit status, not after the
// readiness wait's 10 s with a bare "nothing accepts".
func TestStartFailsWithEtcdOutput(t *testing.T) {
	t.Parallel()
	Binary(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	start := time.Now()
	msg := proxytest.CatchFatal(t, func(tb testing.TB) {
		s := &Server{tb: tb, dir: t.TempDir(), Endpoint: porttest.Hold(tb), peer: taken.Addr().String()}
		s.Restart()
	})
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Start failed after %v; want at once", took)
	}
	for _, want := range []string{"etcd exited (exit status 1)", taken.Addr().String() + ": bind: address already in use"} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure %q lacks %q", msg, want)
		}
	}
}

// TestRestartKeepsEachLog: each start writes its own log file; a Restart does not
// overwrite the log of the run before the outage.
func TestRestartKeepsEachLog(t *testing.T) {
	t.Parallel()
	s := Start(t)
	s.Stop()
	s.Restart()
	logs, err := filepath.Glob(filepath.Join(s.dir, "etcd-*.log"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(s.dir, "etcd-1.log"), filepath.Join(s.dir, "etcd-2.log")}; strings.Join(logs, " ") != strings.Join(want, " ") {
		t.Fatalf("logs %v after a restart; want %v", logs, want)
	}
}
