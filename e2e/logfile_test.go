package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitFile waits (up to 30 s) for path to contain a line matching re.
func waitFile(t *testing.T, path string, re *regexp.Regexp) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if re.Match(b) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has no line matching %s:\n%s", path, re, b)
		}
		time.Sleep(20 * time.Millisecond) // polling a file written by another process
	}
}

// TestServeLogFile: --log-file takes the log off standard error, and SIGUSR1 after a
// rename (logrotate) sends the next lines to a new file under the old name.
func TestServeLogFile(t *testing.T) {
	dir := t.TempDir()
	demo := exec.Command(bin, "demo", "--dir", dir)
	dlines := startLines(t, demo)
	waitLine(t, dlines, regexp.MustCompile(`Press Ctrl-C`))
	logf := filepath.Join(dir, "tlsgate.log")
	srv := exec.Command(bin, "serve", "--config", filepath.Join(dir, "tlsgate.yaml"), "--log-file", logf, "--log-format", "text")
	var stderr strings.Builder
	srv.Stderr = &stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	waitFile(t, logf, regexp.MustCompile(`level=INFO msg=serving`))
	if err := os.Rename(logf, logf+".1"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitFile(t, logf, regexp.MustCompile(`msg="log file reopened"`))
	for _, p := range []*exec.Cmd{srv, demo} {
		_ = p.Process.Signal(syscall.SIGTERM)
	}
	for range dlines {
	}
	if err := srv.Wait(); err != nil {
		t.Fatalf("serve: %v\n%s", err, stderr.String())
	}
	_ = demo.Wait()
	if stderr.Len() != 0 {
		t.Errorf("serve wrote to stderr with --log-file:\n%s", stderr.String())
	}
	old, _ := os.ReadFile(logf + ".1")
	if strings.Contains(string(old), "reopened") {
		t.Errorf("the rotated file got lines after the reopen:\n%s", old)
	}
}
