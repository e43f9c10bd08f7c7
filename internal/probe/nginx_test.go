package probe_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tlsgate/internal/pkitest"
	"tlsgate/internal/porttest"
	"tlsgate/internal/proxytest"
	"tlsgate/internal/tooltest"
)

// startNginx runs nginx in the foreground with conf (written to dir/nginx.conf, prefix
// dir) and waits until it accepts on addr; nginx exiting first (a bad config, a port
// taken) fails the test at once with its exit status and its output. Cleanup kills it.
func startNginx(tb testing.TB, nginx, dir, conf, addr string) {
	tb.Helper()
	path := pkitest.Write(tb, dir, "nginx.conf", []byte(conf))
	proxytest.StartProcess(tb, exec.Command(nginx, "-p", dir, "-c", path)).WaitAccepting(tb, addr)
}

// TestStartNginxFailsWithItsOutput: an nginx that refuses its config fails the start at
// once, with nginx's own complaint, not after the readiness wait's 10 s.
func TestStartNginxFailsWithItsOutput(t *testing.T) {
	t.Parallel()
	nginx := tooltest.Path(t, "nginx")
	dir := t.TempDir()
	start := time.Now()
	msg := proxytest.CatchFatal(t, func(tb testing.TB) {
		startNginx(tb, nginx, dir, "daemon off;\nmaster_process off;\nerror_log stderr;\npid "+filepath.Join(dir, "nginx.pid")+
			";\nevents {}\nhttp { no_such_directive on; }\n", porttest.Hold(tb))
	})
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the start failed after %v; want at once", took)
	}
	for _, want := range []string{"nginx exited (exit status 1)", `unknown directive "no_such_directive"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure %q lacks %q", msg, want)
		}
	}
}
