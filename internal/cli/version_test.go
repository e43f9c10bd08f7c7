package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	t.Parallel()
	code, out, _ := run("version")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"version:", "commit:", "date:", "go:       " + runtime.Version(), "signing:  " + keySigner()} {
		if !strings.Contains(out, want) {
			t.Errorf("version output lacks %q:\n%s", want, out)
		}
	}
	// Test binaries are built with -buildvcs=false here: no commit, said plainly.
	if BuildInfo().Commit == "" && !strings.Contains(out, "unknown (built without VCS stamping") {
		t.Errorf("missing VCS info is not explained:\n%s", out)
	}
	code, flag, _ := run("--version")
	if code != 0 || !strings.HasPrefix(flag, "tlsgate ") || !strings.Contains(flag, runtime.Version()) || strings.Count(flag, "\n") != 1 {
		t.Errorf("--version: exit %d, %q", code, flag)
	}
}

func TestBuildString(t *testing.T) {
	t.Parallel()
	b := Build{Version: "v1.2.3", Commit: "abc123", Date: "2026-12-01T10:00:00Z", Modified: true, Go: "go1.26.8"}
	got := b.String()
	for _, want := range []string{"tlsgate v1.2.3", "commit abc123-dirty of 2026-12-01T10:00:00Z", "go1.26.8"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
}

func TestCompletion(t *testing.T) {
	t.Parallel()
	for _, shell := range []string{"bash", "zsh", "fish"} {
		code, out, _ := run("completion", shell)
		if code != 0 || !strings.Contains(out, "tlsgate") || len(out) < 500 {
			t.Errorf("completion %s: exit %d, %d bytes", shell, code, len(out))
		}
	}
}

// TestLogFlagCompletion: the shell completion offers the values of the log flags.
func TestLogFlagCompletion(t *testing.T) {
	t.Parallel()
	code, out, _ := run("__complete", "serve", "--log-format", "")
	if code != 0 || !strings.Contains(out, "json\n") || !strings.Contains(out, "text\n") {
		t.Errorf("completion of --log-format: exit %d\n%s", code, out)
	}
}

func TestMan(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if code, _, errs := run("man", "--dir", dir); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, page := range []string{"tlsgate.1", "tlsgate-serve.1", "tlsgate-pki-issue.1", "tlsgate-version.1"} {
		b, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte(".TH ")) || !bytes.Contains(b, []byte(".SH NAME")) {
			t.Errorf("%s is not a man page:\n%s", page, b)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "tlsgate-man.1")); err == nil {
		t.Error("the hidden man command got a page")
	}
	serve, _ := os.ReadFile(filepath.Join(dir, "tlsgate-serve.1"))
	if !bytes.Contains(serve, []byte(`.B \-\-config FILE`)) && !bytes.Contains(serve, []byte(`\-\-config`)) {
		t.Errorf("serve page lacks --config:\n%s", serve)
	}
}
