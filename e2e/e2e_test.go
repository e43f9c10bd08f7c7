// Package e2e runs the built tlsgate binary on loopback and cross-checks it with real
// clients (curl, openssl) when they are on PATH.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"tlsgate/internal/tooltest"
)

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tlsgate-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "tlsgate")
	build := exec.Command("go", "build", "-o", bin, "../cmd/tlsgate")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building tlsgate:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		tooltest.Path(t, tool)
	}
}

// startLines runs cmd and returns a channel of its stdout lines.
func startLines(t *testing.T, cmd *exec.Cmd) <-chan string {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	return startReading(t, cmd, out)
}

// startLogLines runs cmd and returns a channel of its stderr lines, where serve logs.
func startLogLines(t *testing.T, cmd *exec.Cmd) <-chan string {
	t.Helper()
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	return startReading(t, cmd, out)
}

func startReading(t *testing.T, cmd *exec.Cmd, out io.Reader) <-chan string {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return lines
}

func waitLine(t *testing.T, lines <-chan string, re *regexp.Regexp) []string {
	t.Helper()
	var seen []string
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("output ended before %s:\n%s", re, strings.Join(seen, "\n"))
			}
			seen = append(seen, l)
			if re.MatchString(l) {
				return seen
			}
		case <-timeout:
			t.Fatalf("no line matching %s:\n%s", re, strings.Join(seen, "\n"))
		}
	}
}

// stopServeAndDemo sends SIGTERM to a serve process and the demo whose backends it
// uses, reads both outputs to their end, and checks that serve exited cleanly.
func stopServeAndDemo(t *testing.T, srv, demo *exec.Cmd, lines, dlines <-chan string) {
	t.Helper()
	for _, p := range []*exec.Cmd{srv, demo} {
		if err := p.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for range lines {
	}
	for range dlines {
	}
	if err := srv.Wait(); err != nil {
		t.Fatalf("serve exit after SIGTERM: %v", err)
	}
	_ = demo.Wait()
}

// TestDemo runs `tlsgate demo`, then every command it prints, each of which must
// succeed or fail as the demo says; the refusals must be logged with their reasons.
func TestDemo(t *testing.T) {
	need(t, "curl", "openssl", "bash")
	dir := t.TempDir()
	cmd := exec.Command(bin, "demo", "--dir", dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	lines := startLines(t, cmd)
	out := waitLine(t, lines, regexp.MustCompile(`Press Ctrl-C`))
	item := regexp.MustCompile(`^\d+\. .*\((succeeds|fails)\)$`)
	ran := 0
	for i, l := range out {
		m := item.FindStringSubmatch(l)
		if m == nil || i+1 >= len(out) {
			continue
		}
		shell := strings.TrimSpace(out[i+1])
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		res, err := exec.CommandContext(ctx, "bash", "-c", shell).CombinedOutput()
		cancel()
		ok := err == nil
		if ok != (m[1] == "succeeds") {
			t.Errorf("%s\n  %s\n  exit: %v, output:\n%s", l, shell, err, res)
		}
		if strings.Contains(l, "X-Client-Verify: SUCCESS") && !bytes.Contains(res, []byte(`"X-Client-Verify": "SUCCESS"`)) {
			t.Errorf("backend did not see SUCCESS:\n%s", res)
		}
		if strings.Contains(l, "a 403 page says why") && !bytes.Contains(res, []byte("tlsgate reason code: revoked")) {
			t.Errorf("refusal page missing:\n%s", res)
		}
		if strings.Contains(l, "echo backend answers") && !bytes.Contains(res, []byte("hello")) {
			t.Errorf("TCP SSL echo missing:\n%s", res)
		}
		ran++
	}
	if ran < 7 {
		t.Fatalf("ran %d demo commands, want at least 7:\n%s", ran, strings.Join(out, "\n"))
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	for range lines {
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("demo exit: %v\n%s", err, stderr.String())
	}
	reasons := map[string]bool{}
	for l := range strings.SplitSeq(stderr.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "handshake" {
			reasons[fmt.Sprint(m["reason"])] = true
		}
	}
	for _, r := range []string{"no_client_cert", "revoked", "unknown_ca"} {
		if !reasons[r] {
			t.Errorf("no handshake log line with reason %s; got %v", r, reasons)
		}
	}
}

// TestCheckExitCodes: 0 for a valid config, 1 with every problem on stderr, 2 for
// usage errors.
func TestCheckExitCodes(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("lisen: x\nlisteners:\n  - {id: a, protocol: https, listen: 127.0.0.1:0, target_group: g}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bad config", []string{"check", "--config", bad}, 1, bad + ":1: lisen: unknown field"},
		{"missing file", []string{"check", "--config", filepath.Join(dir, "nope.yaml")}, 1, "nope.yaml"},
		{"no --config", []string{"check"}, 2, "--config is required"},
		{"unknown flag", []string{"check", "--confg", "x"}, 2, "unknown flag: --confg"},
		{"unknown command", []string{"chekc"}, 2, "unknown command"},
		{"help", []string{"--help"}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			var stderr bytes.Buffer
			cmd.Stderr, cmd.Stdout = &stderr, io.Discard
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, stderr.String(), tc.code, tc.want)
			}
		})
	}
}

// TestServeReloadAndDrain runs `tlsgate serve` from a demo directory's config: SIGHUP
// with a broken config keeps serving, SIGTERM exits 0.
func TestServeReloadAndDrain(t *testing.T) {
	need(t, "curl")
	dir := t.TempDir()
	demo := exec.Command(bin, "demo", "--dir", dir)
	dlines := startLines(t, demo)
	waitLine(t, dlines, regexp.MustCompile(`Press Ctrl-C`))
	// The demo's backends keep running; serve a second tlsgate from the same files.
	cfg := filepath.Join(dir, "tlsgate.yaml")
	srv := exec.Command(bin, "serve", "--config", cfg)
	lines := startLogLines(t, srv)
	out := waitLine(t, lines, regexp.MustCompile(`"msg":"serving"`))
	addr := ""
	for _, l := range out {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["listener"] == "https-one-way" {
			addr = fmt.Sprint(m["address"])
		}
	}
	if addr == "" {
		t.Fatalf("no address logged:\n%s", strings.Join(out, "\n"))
	}
	curl := func() error {
		_, port, _ := strings.Cut(addr, ":")
		return exec.Command("curl", "-sS", "--fail", "--cacert", filepath.Join(dir, "ca.crt"), "https://localhost:"+port+"/").Run()
	}
	if err := curl(); err != nil {
		t.Fatalf("curl before reload: %v", err)
	}
	good, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, append(good, []byte("oops: 1\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := srv.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLine(t, lines, regexp.MustCompile(`reload failed.*oops`))
	if err := curl(); err != nil {
		t.Fatalf("curl after a failed reload: %v", err)
	}
	stopServeAndDemo(t, srv, demo, lines, dlines)
}
