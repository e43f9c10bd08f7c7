// Package sdnotify speaks systemd's notify protocol (sd_notify(3)) for a Type=notify
// service: one datagram of newline-separated KEY=VALUE assignments to the unix socket
// named by $NOTIFY_SOCKET (a path, or an abstract socket when it starts with "@").
// It is the ~40 lines of libsystemd tlsgate needs, without a module: READY=1 once every
// listener is up, RELOADING=1 with MONOTONIC_USEC then READY=1 around a reload,
// STOPPING=1 on drain, MAINPID= when an upgraded process takes over, and WATCHDOG=1
// pings. Outside systemd (no $NOTIFY_SOCKET) every call does nothing.
package sdnotify

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Notifier sends to one notify socket; the zero value (and nil) sends nothing.
type Notifier struct {
	addr string
}

// FromEnv returns the notifier of $NOTIFY_SOCKET; it sends nothing when that is unset.
func FromEnv() *Notifier {
	return &Notifier{addr: os.Getenv("NOTIFY_SOCKET")}
}

// Enabled reports whether there is a socket to notify.
func (n *Notifier) Enabled() bool { return n != nil && n.addr != "" }

// Send writes the assignments as one datagram. Without a socket it does nothing.
func (n *Notifier) Send(assignments ...string) error {
	if !n.Enabled() {
		return nil
	}
	addr := &net.UnixAddr{Name: n.addr, Net: "unixgram"}
	if strings.HasPrefix(n.addr, "@") {
		addr.Name = "\x00" + n.addr[1:] // Linux abstract namespace
	}
	c, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return fmt.Errorf("notifying systemd: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(strings.Join(assignments, "\n") + "\n")); err != nil {
		return fmt.Errorf("notifying systemd: %w", err)
	}
	return nil
}

// Ready says the service is up (every listener accepting).
func (n *Notifier) Ready(status string) error {
	return n.Send("READY=1", statusLine(status))
}

// statusLine is STATUS= with status on one line: a newline in it (an error joined from
// several) would end the assignment, and the text after it could read as another.
func statusLine(status string) string {
	return "STATUS=" + strings.NewReplacer("\r", " ", "\n", "; ").Replace(status)
}

// Reloading says a reload began; systemd expects READY=1 when it ends. The monotonic
// timestamp lets systemd tell this reload from an earlier one (Type=notify-reload).
func (n *Notifier) Reloading() error {
	return n.Send("RELOADING=1", "MONOTONIC_USEC="+strconv.FormatInt(monotonicUsec(), 10))
}

// Stopping says the service is draining and will exit.
func (n *Notifier) Stopping() error { return n.Send("STOPPING=1", "STATUS=draining") }

// MainPID hands the service over to pid (a binary upgrade's new process) and says it is
// ready.
func (n *Notifier) MainPID(pid int, status string) error {
	return n.Send("MAINPID="+strconv.Itoa(pid), "READY=1", statusLine(status))
}

func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / 1000
}

// WatchdogInterval is systemd's WatchdogSec for this process (from $WATCHDOG_USEC, when
// $WATCHDOG_PID is unset or names this process), or 0 when the watchdog is off.
func WatchdogInterval() time.Duration {
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	us, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || us <= 0 {
		return 0
	}
	return time.Duration(us) * time.Microsecond
}

// Watchdog sends WATCHDOG=1 at half of interval until ctx ends (as sd_watchdog_enabled(3)
// advises), and returns at once when interval is 0. Before each ping it calls healthy
// (when set): an error skips the ping and goes into STATUS=, so systemd restarts a
// process that stopped serving, and one whose check hangs, after WatchdogSec.
func (n *Notifier) Watchdog(ctx context.Context, interval time.Duration, healthy func() error) {
	if !n.Enabled() || interval <= 0 {
		return
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		if healthy == nil {
			_ = n.Send("WATCHDOG=1")
		} else if err := healthy(); err != nil {
			_ = n.Send(statusLine("unhealthy, no watchdog ping: " + err.Error()))
		} else {
			_ = n.Send("WATCHDOG=1")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
