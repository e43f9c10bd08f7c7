package proxytest_test

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"tlsgate/internal/porttest"
	"tlsgate/internal/proxytest"
)

// TestWaitAcceptingProcessExits: a process that dies before it accepts fails the
// readiness wait at once (not after its 10 s), with its exit status and its output.
func TestWaitAcceptingProcessExits(t *testing.T) {
	t.Parallel()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("sh not on PATH")
	}
	addr := porttest.Hold(t)
	start := time.Now()
	msg := proxytest.CatchFatal(t, func(tb testing.TB) {
		p := proxytest.StartProcess(tb, exec.Command(sh, "-c", "echo starting; echo 'bad directive at line 3' >&2; exit 3"))
		p.WaitAccepting(tb, addr)
	})
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the wait failed after %v; want at once", took)
	}
	for _, want := range []string{"nothing accepts on " + addr, "sh exited (exit status 3)", "starting", "bad directive at line 3"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
}

// TestProcessOutputTail: the kept output is bounded to its last 8 KiB.
func TestProcessOutputTail(t *testing.T) {
	t.Parallel()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("sh not on PATH")
	}
	p := proxytest.StartProcess(t, exec.Command(sh, "-c", "i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done; echo last; exit 1"))
	<-p.Done()
	got := p.Exited()
	if !strings.Contains(got, "line 1999\nlast") || strings.Contains(got, "line 10\n") || len(got) > 9<<10 {
		t.Fatalf("Exited() = %d bytes, %q…; want the output's last 8 KiB", len(got), got[:min(len(got), 200)])
	}
}
