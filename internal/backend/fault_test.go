package backend_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"tlsgate/internal/backend"
	"tlsgate/internal/porttest"
)

func dialErr(err error) error {
	return &net.OpError{Op: "dial", Net: "tcp", Err: err}
}

// TestFault: only what the target causes is charged to it; a cancelled dial and local
// errors of this process never are.
func TestFault(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"refused", dialErr(os.NewSyscallError("connect", syscall.ECONNREFUSED)), true},
		{"host unreachable", dialErr(os.NewSyscallError("connect", syscall.EHOSTUNREACH)), true},
		{"reset", fmt.Errorf("reading: %w", syscall.ECONNRESET), true},
		{"deadline", context.DeadlineExceeded, true},
		{"too many open files", dialErr(os.NewSyscallError("socket", syscall.EMFILE)), false},
		{"file table full", dialErr(os.NewSyscallError("socket", syscall.ENFILE)), false},
		{"no ports", dialErr(os.NewSyscallError("connect", syscall.EADDRNOTAVAIL)), false},
		{"no buffers", dialErr(os.NewSyscallError("connect", syscall.ENOBUFS)), false},
		{"no route", dialErr(os.NewSyscallError("connect", syscall.ENETUNREACH)), false},
		{"cancelled", dialErr(context.Canceled), false},
		{"dns", dialErr(&net.DNSError{Err: "no such host", Name: "x"}), false},
		{"nil", nil, false},
		{"other", errors.New("something"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := backend.Fault(tc.err); got != tc.want {
				t.Fatalf("Fault(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// TestFaultRealDials classifies the errors of real dials: a cancelled one is not the
// target's, a refused and a timed-out one are.
func TestFaultRealDials(t *testing.T) {
	dead := porttest.Dead(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (&net.Dialer{}).DialContext(ctx, "tcp", dead); err == nil || backend.Fault(err) {
		t.Fatalf("cancelled dial: %v charged", err)
	}
	if _, err := net.Dial("tcp", dead); err == nil || !backend.Fault(err) {
		t.Fatalf("refused dial: %v not charged", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), -time.Second)
	defer cancel()
	if _, err := (&net.Dialer{}).DialContext(ctx, "tcp", dead); err == nil || !backend.Fault(err) {
		t.Fatalf("timed-out dial: %v not charged", err)
	}
}
