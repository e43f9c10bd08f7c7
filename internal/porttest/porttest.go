// Package porttest holds loopback addresses for tests that need a target where nothing
// listens, or a port for a server process to bind. It imports only the standard library,
// so any package's tests (backend's own included) can use it; only _test.go files and
// other test helpers (etcdtest) import it.
//
// A dead address made by listening on 127.0.0.1:0 and closing the listener at once holds
// nothing: any listener on the machine (another test's, another package's test process)
// can be given that port, and the "dead" target then accepts. A reserved address is a
// socket bound to a loopback port and not listening: connects to it are refused (RST),
// and no other socket of the machine can bind the port (ours has no SO_REUSEADDR) or take
// it as a client's local port, for the test's length.
//
// A held address is for a server process that binds a port by number (nginx, HAProxy,
// etcd, a tlsgate binary): a socket bound to the port with SO_REUSEADDR, not listening.
// The kernel gives no one a held port as an ephemeral one (bind to port 0, a client's
// local port), so unlike a listener closed at once it cannot be taken between the test
// choosing it and the server binding it; a server whose socket has SO_REUSEADDR (Go's
// net.Listen, nginx, HAProxy, etcd) binds it and listens, and binds it again after a
// restart, while the test holds it.
package porttest

import (
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
)

// Reserved is a loopback port held by a bound socket that does not listen.
type Reserved struct {
	// Addr is the port's address, 127.0.0.1:PORT.
	Addr string
	f    *os.File // the bound socket
}

// Reserve binds a loopback port without listening; the test's end closes it.
func Reserve(tb testing.TB) *Reserved {
	tb.Helper()
	return bind(tb, false)
}

// Hold is a loopback address for a server process to bind by number: its port is held
// for the test's length, so no other socket is given it meanwhile, and a server with
// SO_REUSEADDR can bind it (again after a restart). Connects are refused until one does.
func Hold(tb testing.TB) string {
	tb.Helper()
	return bind(tb, true).Addr
}

// bind binds a loopback port (with SO_REUSEADDR when reuse) without listening; the
// test's end closes the socket.
func bind(tb testing.TB, reuse bool) *Reserved {
	tb.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		tb.Fatal(err)
	}
	syscall.CloseOnExec(fd)
	f := os.NewFile(uintptr(fd), "reserved port")
	tb.Cleanup(func() { _ = f.Close() })
	if reuse {
		if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
			tb.Fatal(err)
		}
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		tb.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		tb.Fatal(err)
	}
	port := sa.(*syscall.SockaddrInet4).Port
	return &Reserved{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), f: f}
}

// Dead is a loopback address where nothing listens and connects are refused, for the
// test's length.
func Dead(tb testing.TB) string { return Reserve(tb).Addr }

// Listen starts listening on the reserved port (a late backend): the same socket, so no
// one could take the port between. The test's end closes the listener.
func (r *Reserved) Listen(tb testing.TB) net.Listener {
	tb.Helper()
	if err := syscall.Listen(int(r.f.Fd()), 128); err != nil {
		tb.Fatal(err)
	}
	ln, err := net.FileListener(r.f) // a descriptor of its own on the same socket
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = ln.Close() })
	return ln
}
