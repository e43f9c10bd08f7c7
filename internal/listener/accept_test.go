package listener

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"tlsgate/internal/config"
	"tlsgate/internal/metrics"
)

// scripted is a net.Listener whose Accept returns the given errors in turn, then
// net.ErrClosed; it records when each Accept was called.
type scripted struct {
	errs  []error
	calls []time.Time
}

func (s *scripted) Accept() (net.Conn, error) {
	s.calls = append(s.calls, time.Now())
	if len(s.calls) > len(s.errs) {
		return nil, net.ErrClosed
	}
	return nil, s.errs[len(s.calls)-1]
}
func (s *scripted) Close() error   { return nil }
func (s *scripted) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

func emfile() error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
}

func newScripted(t *testing.T, ln net.Listener) (*Listener, *metrics.Metrics, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	m := metrics.New()
	st := NewState(&State{ID: "l", Protocol: config.ProtoTCP, Default: &Domain{}}, nil)
	l := New(ln, st, Deps{Log: slog.New(slog.NewJSONHandler(&logs, nil)), Metrics: m})
	return l, m, &logs
}

func logLines(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range bytes.Lines(b.Bytes()) {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// TestAcceptBackoff: temporary accept errors (EMFILE, ENFILE, ECONNABORTED, timeouts)
// do not end the listener (issue 12: it returned on EMFILE, dead for good); it waits
// 5 ms doubling to 1 s between tries, and logs the burst once when it begins and once
// with its count when it ends, not per error.
func TestAcceptBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var errs []error
		for i := range 12 { // 1.3 s of doubling, then 4 s at the 1 s cap: one burst
			errs = append(errs, []error{emfile(), os.NewSyscallError("accept4", syscall.ENFILE),
				os.NewSyscallError("accept4", syscall.ECONNABORTED), os.ErrDeadlineExceeded}[i%4])
		}
		ln := &scripted{errs: errs}
		l, m, logs := newScripted(t, ln)
		if err := l.Serve(); err != nil {
			t.Fatalf("Serve returned %v after temporary errors", err)
		}
		if len(ln.calls) != 13 {
			t.Fatalf("%d accepts, want 13 (12 failures, then the close)", len(ln.calls))
		}
		want := 5 * time.Millisecond
		for i := 1; i < len(ln.calls); i++ {
			if got := ln.calls[i].Sub(ln.calls[i-1]); got != want {
				t.Fatalf("wait %d: %v, want %v", i, got, want)
			}
			want = min(2*want, time.Second)
		}
		if n := testutil.ToFloat64(m.AcceptErrors.WithLabelValues("l", "temporary")); n != 12 {
			t.Fatalf("temporary accept errors counted %v, want 12", n)
		}
		lines := logLines(t, logs)
		if len(lines) != 2 || lines[0]["msg"] != acceptMsgFailing || lines[1]["msg"] != acceptMsgRecovered || lines[1]["errors"] != 12.0 {
			t.Fatalf("log lines %v, want one when the burst began and one with its count", lines)
		}
		if l.Err() != nil {
			t.Fatalf("Err = %v", l.Err())
		}
	})
}

// TestAcceptLongBurst: a burst that lasts is reported every 10 s, not per error.
func TestAcceptLongBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errs := make([]error, 100) // about 93 s at the 1 s cap
		for i := range errs {
			errs[i] = emfile()
		}
		l, _, logs := newScripted(t, &scripted{errs: errs})
		_ = l.Serve()
		if n := len(logLines(t, logs)); n < 9 || n > 12 {
			t.Fatalf("%d log lines for a 93 s burst, want one per 10 s", n)
		}
	})
}

// TestAcceptFatal: any other error ends the listener loudly: Serve returns it, Err
// reports it (for /healthz), one error line, and the fatal counter.
func TestAcceptFatal(t *testing.T) {
	bad := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EINVAL)}
	ln := &scripted{errs: []error{emfile(), bad}}
	l, m, logs := newScripted(t, ln)
	err := l.Serve()
	if !errors.Is(err, syscall.EINVAL) || !errors.Is(l.Err(), syscall.EINVAL) {
		t.Fatalf("Serve = %v, Err = %v; want EINVAL", err, l.Err())
	}
	if n := testutil.ToFloat64(m.AcceptErrors.WithLabelValues("l", "fatal")); n != 1 {
		t.Fatalf("fatal counted %v", n)
	}
	lines := logLines(t, logs)
	last := lines[len(lines)-1]
	if last["msg"] != "listener stopped accepting" || last["level"] != "ERROR" {
		t.Fatalf("log lines %v", lines)
	}
	if s := fmt.Sprint(last["error"]); !bytes.Contains([]byte(s), []byte("invalid argument")) {
		t.Fatalf("error field %q", s)
	}
}
