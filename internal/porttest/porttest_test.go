package porttest_test

import (
	"errors"
	"net"
	"net/netip"
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

// TestHoldLetsAServerBind: a held port refuses connects and is bound (so the kernel
// gives it to no one as an ephemeral port), and a server that binds it by number (with SO_REUSEADDR, as Go,
// nginx and etcd do) listens on it, is the only one that can while it does, and binds
// it again after it stopped (a restart on the same address).
func TestHoldLetsAServerBind(t *testing.T) {
	t.Parallel()
	addr := porttest.Hold(t)
	if c, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			_ = c.Close()
		}
		t.Fatalf("dial %s before a server binds it: %v, want connection refused", addr, err)
	}
	// Something holds the port: a socket without SO_REUSEADDR cannot bind it.
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	port := net.TCPAddrFromAddrPort(netip.MustParseAddrPort(addr)).Port
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("bind of %s without SO_REUSEADDR: %v, want address in use", addr, err)
	}
	for i := range 2 {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("server bind %d of %s: %v", i+1, addr, err)
		}
		if other, err := net.Listen("tcp", addr); !errors.Is(err, syscall.EADDRINUSE) {
			if other != nil {
				_ = other.Close()
			}
			t.Fatalf("a second listener on %s while the server listens: %v, want address in use", addr, err)
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
		_ = ln.Close()
	}
}
