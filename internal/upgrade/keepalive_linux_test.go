package upgrade

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// envChild makes the test binary TestKeepAliveChild's new process.
const envChild = "TLSGATE_TEST_UPGRADE_CHILD"

// TestInheritedKeepsKeepAlive: after an upgrade, a connection accepted on the inherited
// socket has the client keep-alive (on, 15 s, 15 s, 9) as on a freshly opened one. The
// socket passed on here has none set, so the new process's per-connection path must
// set them: were it opened with KeepAlive -1 (listensock's fresh sockets), it would get
// SO_KEEPALIVE 0 and this fails.
func TestInheritedKeepsKeepAlive(t *testing.T) {
	lc := net.ListenConfig{KeepAlive: -1} // no options on the listening socket
	raw, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Sockets{inherited: map[string][]net.Listener{"127.0.0.1:0": {raw}}}
	ln, err := s.Listen("tcp", "127.0.0.1:0") // takes raw, to pass on
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	wantChildKeepAlive(t, s, ln.Addr().String())
}

// TestFreshSocketKeepAliveAcrossUpgrade: a socket this process opened (listensock: the
// options on the listening socket) passes them on to the new process's connections.
func TestFreshSocketKeepAliveAcrossUpgrade(t *testing.T) {
	s := &Sockets{inherited: map[string][]net.Listener{}}
	ln, err := s.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	wantChildKeepAlive(t, s, ln.Addr().String())
}

// wantChildKeepAlive fails t unless the new process's socket accepted on addr has
// keep-alive on with tlsgate's values (listensock).
func wantChildKeepAlive(t *testing.T, s *Sockets, addr string) {
	t.Helper()
	if got, want := childAccepts(t, s, addr), "keepalive 1 15 15 9"; got != want {
		t.Fatalf("the new process's accepted socket: %q, want %q", got, want)
	}
}

// childAccepts upgrades to the test binary (TestKeepAliveChild), connects to addr and
// returns the line the child reports for the connection it accepted.
func childAccepts(t *testing.T, s *Sockets, addr string) string {
	t.Helper()
	out, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	child, err := s.Start(ctx, os.Args[0], []string{"-test.run=^TestKeepAliveChild$", "-test.count=1"},
		append(os.Environ(), envChild+"=1"), w, os.Stderr)
	_ = w.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { <-child.done }()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = out.SetReadDeadline(time.Now().Add(time.Minute)) // a child that never accepts
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "child: "); ok {
			return line
		}
	}
	t.Fatalf("the child said nothing: %v", sc.Err())
	return ""
}

// TestKeepAliveChild is the new process of the tests above: it takes the
// inherited socket, says ready, accepts one connection and prints its keep-alive.
func TestKeepAliveChild(t *testing.T) {
	if os.Getenv(envChild) == "" {
		t.Skip("the new process of TestInheritedKeepsKeepAlive")
	}
	s, err := Inherit()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := s.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(); err != nil {
		t.Fatal(err)
	}
	// Not forever: the parent's connection may not reach this socket (a bug the test is for).
	timer := time.AfterFunc(30*time.Second, func() { _ = ln.Close() })
	defer timer.Stop()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v [4]int
	_ = rc.Control(func(fd uintptr) {
		v[0], _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
		v[1], _ = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
		v[2], _ = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL)
		v[3], _ = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT)
	})
	fmt.Printf("child: keepalive %d %d %d %d\n", v[0], v[1], v[2], v[3])
}
