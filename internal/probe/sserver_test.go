package probe_test

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"tlsgate/internal/proxytest"
	"tlsgate/internal/tooltest"
)

// TestSServerStartFailureShowsOpenSSL: an s_server that cannot start (its certificate
// file is missing) fails the test with openssl's exit status and complaint.
func TestSServerStartFailureShowsOpenSSL(t *testing.T) {
	tooltest.Path(t, "openssl")
	missing := filepath.Join(t.TempDir(), "missing.crt")
	msg := proxytest.CatchFatal(t, func(tb testing.TB) { sServer(tb, "-cert", missing) })
	for _, want := range []string{"s_server did not start: openssl exited (exit status 1)", "Could not open file", missing} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure %q lacks %q", msg, want)
		}
	}
}

// TestSServerFailedTestLogsOpenSSL: a test that fails after s_server started logs
// openssl's output at its end (here its ACCEPT line).
func TestSServerFailedTestLogsOpenSSL(t *testing.T) {
	f := newFixture(t)
	tb := &failedTB{TB: t}
	addr := sServer(tb, "-cert", f.path("server.crt"), "-key", f.path("server.key"))
	tb.runCleanups()
	_, port, _ := net.SplitHostPort(addr)
	if want := "ACCEPT 127.0.0.1:" + port; !strings.Contains(tb.logs.String(), want) {
		t.Fatalf("log of a failed test %q lacks openssl's %q", tb.logs.String(), want)
	}
}

// failedTB is a test that has failed: it keeps its log and cleanups for the caller.
type failedTB struct {
	testing.TB
	logs     strings.Builder
	cleanups []func()
}

func (f *failedTB) Failed() bool { return true }

func (f *failedTB) Logf(format string, args ...any) {
	f.logs.WriteString(fmt.Sprintf(format, args...) + "\n")
}

func (f *failedTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }

func (f *failedTB) runCleanups() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}
