package tlsconf_test

import (
	"crypto/tls"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"tlsgate/internal/certstore"
	"tlsgate/internal/config"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
	"tlsgate/internal/tlsconf"
)

// countingConn counts the writes that reach the socket.
type countingConn struct {
	net.Conn
	writes atomic.Int32
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// TestFirstAnswerOneRecord: a connection's first answer of 1,190 bytes (the benchmark's
// 1 KiB response with its head) leaves in one TLS record and one write to the socket,
// as nginx and HAProxy send it. crypto/tls's dynamic record sizing would cap the first
// record at 1,186 bytes and write twice.
func TestFirstAnswerOneRecord(t *testing.T) {
	t.Parallel()
	ca := pkitest.New(t, "records root", pki.ECDSAP256)
	leaf := ca.Issue("localhost", pkitest.Server("localhost"))
	store := &certstore.Store{Servers: map[string]*certstore.Server{"site": {ID: "site", Cert: leaf.TLS()}}}
	now := func() time.Time { return pkitest.Now }
	a, err := tlsconf.New(&config.SSL{Mode: config.ModeOneWay, ServerCertificates: []string{"site"}, Policy: "tls12-modern"},
		store, tlsconf.Env{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	answer := make([]byte, 1190)
	for i := range answer {
		answer[i] = byte('a' + i%26)
	}
	writes := make(chan int32, 1)
	for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		go serveOnce(ln, a.Config, answer, writes)
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost",
			Time: now, MinVersion: v, MaxVersion: v})
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(answer))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != string(answer) {
			t.Fatalf("%s: read %d bytes, %v", tls.VersionName(v), len(got), err)
		}
		c.Close()
		if n := <-writes; n != 1 {
			t.Fatalf("%s: the first answer took %d writes to the socket, want 1", tls.VersionName(v), n)
		}
	}
}

// serveOnce accepts one connection, completes its handshake, writes answer in one call
// and reports how many writes reached the socket for it (-1: failed).
func serveOnce(ln net.Listener, cfg *tls.Config, answer []byte, writes chan<- int32) {
	raw, err := ln.Accept()
	if err != nil {
		writes <- -1
		return
	}
	cc := &countingConn{Conn: raw}
	tc := tls.Server(cc, cfg)
	defer tc.Close()
	if tc.Handshake() != nil {
		writes <- -1
		return
	}
	before := cc.writes.Load()
	if _, err := tc.Write(answer); err != nil {
		writes <- -1
		return
	}
	writes <- cc.writes.Load() - before
}
