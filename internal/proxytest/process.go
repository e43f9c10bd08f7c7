package proxytest

import (
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// tailSize bounds the output a Process keeps: enough for a tool's complaint and the lines
// before it (etcd's fatal line with its stack trace is about 1 KiB).
const tailSize = 8 << 10

// Process is a server process a test started (nginx, HAProxy, etcd): a goroutine waits
// for its exit, and the last 8 KiB of its stdout and stderr are kept, so a readiness
// wait fails at once when the process dies during start-up (a bad config, a port taken),
// with its exit status and what it said.
type Process struct {
	name string
	out  tail
	done chan struct{} // closed by the goroutine that calls cmd.Wait, after err is set
	err  error
	cmd  *exec.Cmd
}

// StartProcess starts cmd, keeping the tail of its stdout and stderr (still written to
// cmd.Stdout and cmd.Stderr when those are set, as a log file), and kills it when the
// test ends. A failure to start fails the test.
func StartProcess(tb testing.TB, cmd *exec.Cmd) *Process {
	tb.Helper()
	p := &Process{name: filepath.Base(cmd.Path), done: make(chan struct{}), cmd: cmd}
	cmd.Stdout, cmd.Stderr = tee(cmd.Stdout, &p.out), tee(cmd.Stderr, &p.out)
	// A child that outlives the process and keeps its output open would hold Wait
	// (the copying goroutines) for ever; the tools started here fork none.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	tb.Cleanup(p.Stop)
	return p
}

func tee(w io.Writer, t *tail) io.Writer {
	if w == nil {
		return t
	}
	return io.MultiWriter(w, t)
}

// Done is closed once the process has exited and its output is read.
func (p *Process) Done() <-chan struct{} { return p.done }

// Stop kills the process (no graceful stop) and waits for it to exit; after the first
// call it does nothing.
func (p *Process) Stop() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Output returns the tail of what the process has written so far: for a failure message
// while it runs, or after Stop.
func (p *Process) Output() string { return p.out.String() }

// Exited describes an exited process: its name, exit status and output's tail. Call it
// only after Done is closed.
func (p *Process) Exited() string {
	status := "exit status 0"
	if p.err != nil {
		status = p.err.Error()
	}
	return fmt.Sprintf("%s exited (%s); its output's end:\n%s", p.name, status, p.out.String())
}

// WaitAccepting returns once addr accepts TCP connections. It fails the test at once
// when the process exits first (with Exited's description), and after 10 s otherwise.
func (p *Process) WaitAccepting(tb testing.TB, addr string) {
	tb.Helper()
	poll(tb, p, "nothing accepts on "+addr, dial(addr))
}

// WaitReady returns once ready returns nil: the readiness probe for a server that
// accepts connections before it can serve them (etcd binds its client port before it has
// read its TLS files, and may exit after). It fails the test at once when the process
// exits first, with Exited's description, and after 10 s otherwise, with ready's last
// error; what names the state awaited in the message ("etcd is not healthy at …").
func (p *Process) WaitReady(tb testing.TB, what string, ready func() error) {
	tb.Helper()
	poll(tb, p, what, ready)
}

// WaitAccepting returns once addr accepts TCP connections, and fails the test after
// 10 s: the readiness probe for a server started as a process. Prefer
// Process.WaitAccepting, which also fails at once when the process dies.
func WaitAccepting(tb testing.TB, addr string) {
	tb.Helper()
	poll(tb, nil, "nothing accepts on "+addr, dial(addr))
}

func dial(addr string) func() error {
	return func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}
}

// poll calls ready until it returns nil, failing the test after 10 s or, with a process,
// at once when the process exits.
func poll(tb testing.TB, p *Process, what string, ready func() error) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var done <-chan struct{} // nil (never ready) without a process
	if p != nil {
		done = p.done
	}
	for {
		err := ready()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			if p != nil {
				tb.Fatalf("%s after 10 s: %v; %s's output so far:\n%s", what, err, p.name, p.out.String())
			}
			tb.Fatalf("%s: %v", what, err)
		}
		// The poll's interval: a refused connect takes microseconds, and back to back
		// they would compete with the starting server for this machine's cores. The
		// process's exit ends the wait at once.
		select {
		case <-done:
			tb.Fatalf("%s: %s", what, p.Exited())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// tail keeps the last tailSize bytes written to it.
type tail struct {
	mu  sync.Mutex
	buf []byte
	cut bool // bytes before buf were dropped
}

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(b)
	if len(b) >= tailSize {
		t.buf, t.cut = append(t.buf[:0], b[len(b)-tailSize:]...), true
		return n, nil
	}
	if over := len(t.buf) + len(b) - tailSize; over > 0 {
		t.buf, t.cut = append(t.buf[:0], t.buf[over:]...), true
	}
	t.buf = append(t.buf, b...)
	return n, nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimRight(string(t.buf), "\n")
	if t.cut {
		s = "…" + s
	}
	if s == "" {
		s = "(nothing)"
	}
	return s
}

// CatchFatal runs f with a testing.TB whose Fatal and Fatalf end f (as they end a test)
// and returns the message, or fails the test when f returns without one: for tests of
// helpers that must fail their test. The cleanups f registers run when f ends; a skip
// inside f is caught as a failure too (skip before, with t).
func CatchFatal(t *testing.T, f func(tb testing.TB)) string {
	t.Helper()
	tb := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer tb.cleanup()
		f(tb)
	}()
	<-done
	if !tb.failed {
		t.Fatal("the helper returned without failing its test")
	}
	return tb.msg
}

type fatalTB struct {
	testing.TB
	mu       sync.Mutex
	failed   bool
	msg      string
	cleanups []func()
}

func (f *fatalTB) Fatal(args ...any) { f.fatal(fmt.Sprint(args...)) }

func (f *fatalTB) Fatalf(format string, args ...any) { f.fatal(fmt.Sprintf(format, args...)) }

func (f *fatalTB) Skip(args ...any) { f.fatal("skipped: " + fmt.Sprint(args...)) }

func (f *fatalTB) Skipf(format string, args ...any) {
	f.fatal("skipped: " + fmt.Sprintf(format, args...))
}

func (f *fatalTB) fatal(msg string) {
	f.mu.Lock()
	f.failed, f.msg = true, msg
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fatalTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

func (f *fatalTB) cleanup() {
	f.mu.Lock()
	fns := f.cleanups
	f.cleanups = nil
	f.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}
