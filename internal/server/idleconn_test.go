package server_test

import (
	"bufio"
	"crypto/tls"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"tlsgate/internal/pki"
)

// goroutinesWith counts the goroutines whose stack names each of frames.
func goroutinesWith(frames ...string) map[string]int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	counts := map[string]int{}
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		for _, f := range frames {
			if strings.Contains(g, f) {
				counts[f]++
			}
		}
	}
	return counts
}

// TestFreshConnectionHoldsNoWorker: a mutual TLS connection that finished its handshake
// and sent nothing yet waits on its socket alone, with no worker goroutine parked in a
// TLS read (its stack, grown by the handshake, was most of an idle connection's memory:
// 34 KiB against 21 KiB after a first request). Its first request is then served.
func TestFreshConnectionHoldsNoWorker(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	cert := e.ca.Issue("client").TLS()
	const n = 20
	conns := make([]*tls.Conn, n)
	for i := range conns {
		c, err := tls.Dial("tcp", e.addr("mutual"), e.tlsConfig(tls.VersionTLS13, &cert))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns[i] = c
	}
	const (
		conn     = "listener.(*Listener).serveH1"
		inRead   = "listener.readFirst"
		onSocket = "listener.(*sockConn).readable"
	)
	// Wait until the server handled every handshake and each connection settled, on
	// its socket or in a worker's read.
	var got map[string]int
	for deadline := time.Now().Add(30 * time.Second); ; {
		got = goroutinesWith(conn, inRead, onSocket)
		if got[conn] >= n && got[inRead]+got[onSocket] >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("connections not settled: %v", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got[inRead] != 0 {
		t.Fatalf("%d workers parked in a read for connections that sent nothing (%v); want 0", got[inRead], got)
	}
	for i, c := range conns {
		if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("GET /first HTTP/1.1\r\nHost: localhost\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("connection %d, first request: %v, %v", i, resp, err)
		}
		resp.Body.Close()
	}
}

// firstFlight holds the client's writes after its first (the ClientHello), so the end
// of its handshake and a first request leave in one TCP segment.
type firstFlight struct {
	net.Conn
	writes int
	held   []byte
}

func (f *firstFlight) Write(p []byte) (int, error) {
	if f.writes++; f.writes == 1 {
		return f.Conn.Write(p)
	}
	f.held = append(f.held, p...)
	return len(p), nil
}

// TestH1RequestWithFinished: a request that arrived in one segment with the client's
// Finished waits in TLS's buffer when the handshake ends, not in the socket; it is
// served at once (a server waiting on the socket would answer only at header_timeout).
func TestH1RequestWithFinished(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	for _, id := range []string{"one_way", "mutual"} {
		raw, err := net.Dial("tcp", e.addr(id))
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		f := &firstFlight{Conn: raw}
		cert := e.ca.Issue("client").TLS()
		tc := tls.Client(f, e.tlsConfig(tls.VersionTLS13, &cert))
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		if _, err := tc.Write([]byte("GET /with-finished HTTP/1.1\r\nHost: localhost\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Write(f.held); err != nil {
			t.Fatal(err)
		}
		if err := raw.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		h := &h1{t: t, c: tc, br: bufio.NewReader(tc)}
		if got := h.read(http.MethodGet); got.status != http.StatusOK || got.Path != "/with-finished" {
			t.Fatalf("%s: got %+v, want 200 for /with-finished", id, got)
		}
	}
}
