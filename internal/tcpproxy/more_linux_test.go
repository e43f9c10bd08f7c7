package tcpproxy_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
	"tlsgate/internal/proxytest"
	"tlsgate/internal/tcpproxy"
	"tlsgate/internal/tooltest"
)

// TestMoreHoldsTheOtherDirectionsSend shows a property of flush's MSG_MORE: the flag is
// the client socket's (rawsock.Conn.SetMore), read by every send made while it is on,
// not only by the flushing goroutine's. The relay's up direction writes on the client's
// connection too: crypto/tls, reading, answers a KeyUpdate that requests one (and sends
// alerts). Here the down direction is in a flush with more (SetMore(true) as flush sets
// it around its Write), openssl s_client sends a KeyUpdate ("K") and a line, and the TLS
// Read that returns the line has sent the KeyUpdate's answer: the kernel holds it (less
// than a segment, MSG_MORE), past the flush's SetMore(false), until a send without the
// flag or Push.
//
// In the relay this is a delay, not a stall: crypto/tls's write lock (Conn.out) keeps
// the answer's send out of the flush's Write, so it can take the flag only in the
// moments just before or after that Write, and the flush that set it has held set, so
// the relay's next send without the flag, or its Push before it waits, sends the answer
// too. The one race left, an answer that read the flag just before the flush's
// SetMore(false) but reached send(2) after the down direction had already pushed and
// gone to wait (Push takes no TLS lock), which then waited for the down direction's next
// send or the kernel's own timer (about 200 ms here), is closed in rawsock: a send made
// with the flag that finds it off at its end pushes itself
// (TestMoreSendPushesItselfWhenFlagCleared).
//
// The test fails when sends stop taking the socket's flag from another goroutine (a
// flag per send, given by the flushing Write alone): then nothing is unsent after the
// Read, and this test should be turned round to require exactly that.
func TestMoreHoldsTheOtherDirectionsSend(t *testing.T) {
	openssl := tooltest.Path(t, "openssl")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd := exec.Command(openssl, "s_client", "-connect", ln.Addr().String(), "-tls1_3", "-servername", "relay.test")
	stdin, err := cmd.StdinPipe() // s_client reads its commands (K) from it; closing it ends s_client
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	p := proxytest.StartProcess(t, cmd)
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
	c, err := ln.Accept()
	if err != nil {
		t.Fatalf("accepting s_client: %v; s_client's output:\n%s", err, p.Output())
	}
	defer c.Close()
	s := tcpproxy.WrapSocket(c).(*tcpproxy.Socket)
	ca := pkitest.New(t, "relay ca", pki.ECDSAP256)
	srv := tls.Server(s, &tls.Config{Certificates: []tls.Certificate{ca.Issue("relay.test", pkitest.Server("relay.test")).TLS()}, MinVersion: tls.VersionTLS13})
	_ = srv.SetDeadline(time.Now().Add(10 * time.Second))
	if err := srv.Handshake(); err != nil {
		t.Fatalf("handshake: %v; s_client's output:\n%s", err, p.Output())
	}
	if n := unsentOn(t, s); n != 0 {
		t.Fatalf("%d bytes unsent after the handshake", n)
	}

	s.SetMore(true) // the down direction's flush, in progress
	if _, err := stdin.Write([]byte("K\n")); err != nil {
		t.Fatal(err)
	}
	// The line goes after the KeyUpdate: s_client drops the rest of a read that starts
	// with K, so it is written once s_client has taken the K.
	waitOutput(t, p, "KEYUPDATE")
	if _, err := stdin.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := srv.Read(buf) // handles the KeyUpdate (sending its answer), then the line
	if err != nil || string(buf[:n]) != "hello\n" {
		t.Fatalf("Read = %q, %v; want the line after the KeyUpdate", buf[:n], err)
	}
	held := unsentOn(t, s)
	if held == 0 {
		t.Fatal("the KeyUpdate's answer went out while the other direction's flush had MSG_MORE on: the flag is no longer shared by the socket's sends (turn this test round)")
	}
	s.SetMore(false) // the flush's end: no send, so nothing goes
	if n := unsentOn(t, s); n != held {
		t.Fatalf("%d bytes unsent after SetMore(false), want the %d held", n, held)
	}
	t.Logf("the KeyUpdate's answer, %d bytes, held by the kernel under the other direction's MSG_MORE", held)
	if err := s.Push(); err != nil { // what flush's held makes the relay do before it waits
		t.Fatal(err)
	}
	if n := unsentOn(t, s); n != 0 {
		t.Fatalf("%d bytes unsent after Push", n)
	}
	// s_client can read what is sent under the new keys: it had the answer.
	if _, err := srv.Write([]byte("after the update\n")); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, p, "after the update")
}

// unsentOn is how many bytes s holds that it has not sent (SIOCOUTQNSD).
func unsentOn(t *testing.T, s *tcpproxy.Socket) int {
	t.Helper()
	var n int
	var ierr error
	if err := s.RawConn().Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQNSD) }); err != nil || ierr != nil {
		t.Fatal(err, ierr)
	}
	return n
}

// waitOutput polls p's output (5 ms apart, for up to 10 s) until it holds want; the
// process's exit fails the test at once.
func waitOutput(t *testing.T, p *proxytest.Process, want string) {
	t.Helper()
	p.WaitReady(t, fmt.Sprintf("s_client printed no %q", want), func() error {
		if !strings.Contains(p.Output(), want) {
			return errors.New("not yet")
		}
		return nil
	})
}
