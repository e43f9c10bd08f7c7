package listener

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"tlsgate/internal/metrics"
	"tlsgate/internal/rawsock"
)

// loopPair returns the two ends of a real loopback TCP connection: the client's and
// the server's.
func loopPair(t *testing.T, ln net.Listener) (client, server net.Conn) {
	t.Helper()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close(); _ = server.Close() })
	return client, server
}

// pump writes total bytes to c in 64 KiB writes; the first error ends it.
func pump(c net.Conn, total int) error {
	buf := make([]byte, 64<<10)
	for sent := 0; sent < total; sent += len(buf) {
		if _, err := c.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

// TestLingerBound: beyond Deps.Lingerers' bound, a close that would linger happens at
// once, as before lingering existed, and is counted as over_limit. The two that
// linger half-close (their client reads EOF) and keep reading what their client
// sends; the third is closed: its client's writes fail.
func TestLingerBound(t *testing.T) {
	m := metrics.New()
	slots := NewLingerers(2)
	l := &Listener{deps: Deps{Metrics: m, Lingerers: slots}}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	defer l.cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var clients [3]net.Conn
	for i := range clients {
		c, s := loopPair(t, ln)
		clients[i] = c
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		l.closeLingering(s, "web")
	}
	if n := slots.n.Load(); n != 2 {
		t.Fatalf("%d connections lingering, want the bound, 2", n)
	}
	for i, c := range clients[:2] {
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("lingering %d: read %v, want EOF (the half-close)", i, err)
		}
		if err := pump(c, 4<<20); err != nil {
			t.Fatalf("lingering %d: the client's upload failed: %v", i, err)
		}
	}
	// Closed at once: more than the socket buffers can hold fails, with a reset or a
	// broken pipe, not a timeout.
	err = pump(clients[2], 16<<20)
	if ne, ok := errors.AsType[net.Error](err); err == nil || ok && ne.Timeout() {
		t.Fatalf("over the bound: the client's upload ended with %v, want a reset", err)
	}
	for _, c := range clients[:2] {
		_ = c.Close()
	}
	slots.wg.Wait() // the lingerers see their client close
	if n := slots.n.Load(); n != 0 {
		t.Fatalf("%d places still taken after the lingerers ended", n)
	}
	lingered := testutil.ToFloat64(m.Lingering.WithLabelValues("web", "lingered"))
	over := testutil.ToFloat64(m.Lingering.WithLabelValues("web", "over_limit"))
	if lingered != 2 || over != 1 {
		t.Fatalf("tlsgate_lingering_closes_total: lingered %v, over_limit %v; want 2 and 1", lingered, over)
	}
}

// TestLingerCloseLimits: a lingering close ends on the client's silence, on its total
// time, and on its byte cap, whichever comes first, though the client never closes.
func TestLingerCloseLimits(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tc := range []struct {
		name  string
		lim   lingerLimits
		sends bool // the client keeps sending
	}{
		{"silence", lingerLimits{silence: 50 * time.Millisecond, total: time.Hour, bytes: 1 << 40}, false},
		{"total", lingerLimits{silence: time.Hour, total: 50 * time.Millisecond, bytes: 1 << 40}, false},
		{"bytes", lingerLimits{silence: time.Hour, total: time.Hour, bytes: 256 << 10}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := loopPair(t, ln)
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			done := make(chan struct{})
			go func() { lingerClose(s, tc.lim); close(done) }()
			if tc.sends {
				// Stops once the lingering close ended and the socket reset.
				go func() { _ = pump(c, 1<<30) }()
			}
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("the lingering close did not end")
			}
		})
	}
}

// TestLingerThroughProxyHeader: on a connection from a trusted front (a PROXY protocol
// connection, which has no half-close of its own), the lingering close half-closes the
// TCP connection under it and keeps reading.
func TestLingerThroughProxyHeader(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, s := loopPair(t, ln)
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, "PROXY TCP4 192.0.2.1 192.0.2.2 40000 443\r\nGET / HTTP/1.1\r\n"); err != nil {
		t.Fatal(err)
	}
	pc := proxyproto.NewConn(s)
	if got := pc.RemoteAddr().String(); got != "192.0.2.1:40000" {
		t.Fatalf("PROXY header not read: remote %s", got)
	}
	done := make(chan struct{})
	go func() { lingerClose(pc, defaultLinger); close(done) }()
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("read %v, want EOF (the half-close)", err)
	}
	if err := pump(c, 4<<20); err != nil {
		t.Fatalf("the client's upload failed: %v", err)
	}
	_ = c.Close()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the lingering close did not end when the client closed")
	}
}

// TestPendingSeesTheSocket: pending looks at the socket under a connection without
// waiting — ours, and the TCP connection under a PROXY protocol connection — and
// reports bytes not read yet, or the client's end, but not an empty socket.
func TestPendingSeesTheSocket(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tc := range []struct {
		name string
		wrap func(t *testing.T, c, s net.Conn) net.Conn
	}{
		{"sockConn", func(t *testing.T, _, s net.Conn) net.Conn { return wrapSocket(s) }},
		{"PROXY", func(t *testing.T, c, s net.Conn) net.Conn {
			if _, err := io.WriteString(c, "PROXY TCP4 192.0.2.1 192.0.2.2 40000 443\r\n"); err != nil {
				t.Fatal(err)
			}
			pc := proxyproto.NewConn(s)
			if got := pc.RemoteAddr().String(); got != "192.0.2.1:40000" {
				t.Fatalf("PROXY header not read: remote %s", got)
			}
			return pc
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := loopPair(t, ln)
			conn := tc.wrap(t, c, s)
			if pending(conn) {
				t.Fatal("pending on an empty socket")
			}
			if _, err := io.WriteString(c, "GET"); err != nil {
				t.Fatal(err)
			}
			arrived(t, s)
			if !pending(conn) {
				t.Fatal("not pending with bytes unread")
			}
			if _, err := io.ReadFull(conn, make([]byte, 3)); err != nil {
				t.Fatal(err)
			}
			_ = c.(*net.TCPConn).CloseWrite()
			arrived(t, s)
			if !pending(conn) {
				t.Fatal("not pending with the client's end unread")
			}
		})
	}
}

// arrived waits, through the poller, until the TCP socket s has bytes or an end to read.
func arrived(t *testing.T, s net.Conn) {
	t.Helper()
	rc, err := s.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	_ = s.SetReadDeadline(time.Now().Add(20 * time.Second))
	var peek [1]byte
	if err := rc.Read(func(fd uintptr) bool { return rawsock.PeekFD(fd, &peek) != syscall.EAGAIN }); err != nil {
		t.Fatal(err)
	}
}
