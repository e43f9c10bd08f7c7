package sdnotify_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"tlsgate/internal/sdnotify"
)

// listen opens a real unixgram socket as systemd does and returns its $NOTIFY_SOCKET
// value and a function reading the next datagram.
func listen(t *testing.T, abstract bool) (string, func() string) {
	t.Helper()
	name := filepath.Join(t.TempDir(), "notify")
	env := name
	if abstract {
		env = "@tlsgate-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		name = "\x00" + env[1:]
	}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return env, func() string {
		t.Helper()
		buf := make([]byte, 4096)
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no datagram: %v", err)
		}
		return string(buf[:n])
	}
}

func TestNotify(t *testing.T) {
	for _, abstract := range []bool{false, true} {
		t.Run(map[bool]string{false: "path", true: "abstract"}[abstract], func(t *testing.T) {
			env, next := listen(t, abstract)
			t.Setenv("NOTIFY_SOCKET", env)
			n := sdnotify.FromEnv()
			if !n.Enabled() {
				t.Fatal("not enabled with NOTIFY_SOCKET set")
			}
			steps := []struct {
				send func() error
				want []string
			}{
				{func() error { return n.Ready("serving 2 listeners") }, []string{"READY=1", "STATUS=serving 2 listeners"}},
				{n.Reloading, []string{"RELOADING=1", "MONOTONIC_USEC="}},
				{n.Stopping, []string{"STOPPING=1"}},
				{func() error { return n.MainPID(4242, "upgraded") }, []string{"MAINPID=4242", "READY=1"}},
				{func() error { return n.Ready("reload failed: a\nMAINPID=1") }, []string{"READY=1\nSTATUS=reload failed: a; MAINPID=1\n"}},
			}
			for _, s := range steps {
				if err := s.send(); err != nil {
					t.Fatal(err)
				}
				got := next()
				if !strings.HasSuffix(got, "\n") {
					t.Errorf("datagram %q does not end in a newline", got)
				}
				for _, w := range s.want {
					if !strings.Contains(got, w) {
						t.Errorf("datagram %q lacks %q", got, w)
					}
				}
				if strings.HasPrefix(got, "RELOADING=1") {
					us, err := strconv.ParseInt(strings.TrimSpace(strings.SplitN(got, "MONOTONIC_USEC=", 2)[1]), 10, 64)
					if err != nil || us <= 0 {
						t.Errorf("MONOTONIC_USEC in %q: %v", got, err)
					}
				}
			}
		})
	}
}

func TestNotifyOff(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := sdnotify.FromEnv()
	if n.Enabled() || n.Send("READY=1") != nil {
		t.Fatal("a notifier without NOTIFY_SOCKET sends")
	}
	var nilN *sdnotify.Notifier
	if nilN.Ready("x") != nil {
		t.Fatal("nil notifier")
	}
	// A socket that is gone is an error, not a hang.
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "none"))
	if sdnotify.FromEnv().Send("READY=1") == nil {
		t.Fatal("sent to a missing socket")
	}
}

func TestWatchdog(t *testing.T) {
	env, next := listen(t, false)
	t.Setenv("NOTIFY_SOCKET", env)
	t.Setenv("WATCHDOG_USEC", "40000")
	t.Setenv("WATCHDOG_PID", "")
	iv := sdnotify.WatchdogInterval()
	if iv != 40*time.Millisecond {
		t.Fatalf("interval %v", iv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var sick atomic.Bool
	healthy := func() error {
		if sick.Load() {
			return errors.New(`listener "web" stopped`)
		}
		return nil
	}
	go func() { sdnotify.FromEnv().Watchdog(ctx, iv, healthy); close(done) }()
	for range 3 {
		if got := next(); got != "WATCHDOG=1\n" {
			t.Fatalf("got %q", got)
		}
	}
	// Unhealthy: no more pings, the reason in STATUS=.
	sick.Store(true)
	for {
		got := next()
		if got == "WATCHDOG=1\n" {
			continue // sent before the change was seen
		}
		if got != "STATUS=unhealthy, no watchdog ping: listener \"web\" stopped\n" {
			t.Fatalf("got %q", got)
		}
		break
	}
	if got := next(); got == "WATCHDOG=1\n" {
		t.Fatal("a ping while unhealthy")
	}
	cancel()
	<-done
	t.Setenv("WATCHDOG_PID", "1") // another process's watchdog
	if sdnotify.WatchdogInterval() != 0 {
		t.Error("watchdog of another PID taken")
	}
	t.Setenv("WATCHDOG_PID", "")
	t.Setenv("WATCHDOG_USEC", "")
	if sdnotify.WatchdogInterval() != 0 {
		t.Error("watchdog without WATCHDOG_USEC")
	}
}
