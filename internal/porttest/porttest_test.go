package porttest_test

import (
	"errors"
	"net"
	"syscall"
	"testing"

	"tlsgate/internal/porttest"
)

// TestDeadRefusesAndHolds: a connect to a dead address is refused, and no listener can
// be given its port while the test runs (a listener closed at once held nothing).
func TestDeadRefusesAndHolds(t *testing.T) {
	t.Parallel()
	dead := porttest.Dead(t)
	if c, err := net.Dial("tcp", dead); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			_ = c.Close()
		}
		t.Fatalf("dial %s: %v, want connection refused", dead, err)
	}
	if ln, err := net.Listen("tcp", dead); !errors.Is(err, syscall.EADDRINUSE) {
		if ln != nil {
			_ = ln.Close()
		}
		t.Fatalf("listen on %s: %v, want address in use", dead, err)
	}
}

// TestReservedListen: a reserved port listens on its own socket and accepts.
func TestReservedListen(t *testing.T) {
	t.Parallel()
	r := porttest.Reserve(t)
	ln := r.Listen(t)
	if ln.Addr().String() != r.Addr {
		t.Fatalf("listening on %s, reserved %s", ln.Addr(), r.Addr)
	}
	c, err := net.Dial("tcp", r.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
}
