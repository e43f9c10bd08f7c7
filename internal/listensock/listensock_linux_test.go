package listensock

import (
	"net"
	"path/filepath"
	"syscall"
	"testing"
)

// keepAlive reads SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT of a socket.
func keepAlive(t *testing.T, c syscall.Conn) [4]int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got [4]int
	var gerr error
	err = rc.Control(func(fd uintptr) {
		for i, o := range [][2]int{{syscall.SOL_SOCKET, syscall.SO_KEEPALIVE}, {syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE},
			{syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL}, {syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT}} {
			if got[i], gerr = syscall.GetsockoptInt(int(fd), o[0], o[1]); gerr != nil {
				return
			}
		}
	})
	if err != nil || gerr != nil {
		t.Fatalf("getsockopt: %v %v", err, gerr)
	}
	return got
}

var want = [4]int{1, int(KeepAliveIdle.Seconds()), int(KeepAliveInterval.Seconds()), KeepAliveCount}

// accept dials ln and returns the accepted socket.
func accept(t *testing.T, ln net.Listener) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.(*net.TCPConn)
}

// TestAcceptedSocketKeepAlive: a connection accepted on a Listen socket has the
// keep-alive options, though Go set none on it (KeepAlive -1): the kernel copied the
// listening socket's. Without the options on the listening socket SO_KEEPALIVE is 0 and
// the idle time and interval are the system's (7200 s, 75 s), and this fails.
func TestAcceptedSocketKeepAlive(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		ln, err := Listen("tcp", addr)
		if err != nil {
			if addr == "[::1]:0" {
				t.Logf("no IPv6 loopback: %v", err)
				continue
			}
			t.Fatal(err)
		}
		defer ln.Close()
		if got := keepAlive(t, accept(t, ln)); got != want {
			t.Errorf("%s: accepted socket keep-alive %v, want %v (on, idle s, interval s, count)", addr, got, want)
		}
	}
}

// TestGoSetsNoneItself: the check above is not satisfied by Go: a listener with
// KeepAlive -1 and no options gives sockets without keep-alive.
func TestGoSetsNoneItself(t *testing.T) {
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if got := keepAlive(t, accept(t, ln)); got[0] != 0 {
		t.Fatalf("SO_KEEPALIVE %d on a socket nobody set it on", got[0])
	}
}

// TestListenUnix: a unix socket opens as with net.Listen (no TCP options to set).
func TestListenUnix(t *testing.T) {
	ln, err := Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
}

// BenchmarkKeepAliveCalls: what Go's accept did per connection that Listen saves: the
// four setsockopt calls of SetKeepAliveConfig.
func BenchmarkKeepAliveCalls(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	tc := s.(*net.TCPConn)
	for b.Loop() {
		if err := tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true}); err != nil {
			b.Fatal(err)
		}
	}
}
