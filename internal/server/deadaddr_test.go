package server_test

import (
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
)

// A dead address was a listener's, closed at once: nothing held the port after, and
// any listener on the machine (another test's, another package's test process) could
// be given it. A "dead" target then accepted: TestLateBackendTwoTargets read 502s from
// it under load, where the refused connects should have gone to the live target. A
// reserved address is a socket bound to a loopback port and not listening: connects to
// it are refused (RST) and no other socket of the machine can bind the port (ours has
// no SO_REUSEADDR) or take it as a client's local port, for the test's length.
type reserved struct {
	addr string
	f    *os.File // the bound socket
}

// reserveAddr binds a loopback port without listening; the test's end closes it.
func reserveAddr(t *testing.T) *reserved {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	syscall.CloseOnExec(fd)
	f := os.NewFile(uintptr(fd), "reserved port")
	t.Cleanup(func() { _ = f.Close() })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	port := sa.(*syscall.SockaddrInet4).Port
	return &reserved{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), f: f}
}

// deadAddr is a loopback address where nothing listens, for the test's length.
func deadAddr(t *testing.T) string { return reserveAddr(t).addr }

// listen starts listening on the reserved address (a late backend): the same socket, so
// no one could take the port between.
func (r *reserved) listen(t *testing.T) net.Listener {
	t.Helper()
	if err := syscall.Listen(int(r.f.Fd()), 128); err != nil {
		t.Fatal(err)
	}
	ln, err := net.FileListener(r.f) // a descriptor of its own on the same socket
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}
