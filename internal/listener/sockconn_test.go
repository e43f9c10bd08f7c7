package listener

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
)

// pair is a loopback TCP connection: the server side wrapped as the listener wraps it.
func pair(t *testing.T) (*sockConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	raw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s, ok := wrapSocket(raw).(*sockConn)
	if !ok {
		t.Fatalf("wrapSocket(%T) did not wrap", raw)
	}
	t.Cleanup(func() { s.Close() })
	return s, client
}

// handshake runs TLS 1.3 over the pair: the server on s, the client on client.
func handshake(t *testing.T, s net.Conn, client net.Conn) (srv, cl *tls.Conn) {
	t.Helper()
	ca := pkitest.New(t, "root", pki.ECDSAP256)
	srv = tls.Server(s, &tls.Config{Certificates: []tls.Certificate{ca.Issue("localhost", pkitest.Server("localhost")).TLS()}})
	cl = tls.Client(client, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
	done := make(chan error, 1)
	go func() { done <- cl.Handshake() }()
	if err := srv.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return srv, cl
}

// A try read on an empty socket returns at once with errNotReady; a wait then sees the
// data; a try after the peer closed returns EOF.
func TestSockConnTry(t *testing.T) {
	s, client := pair(t)
	_ = s.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 8)
	s.try = true
	if n, err := s.Read(buf); n != 0 || !errors.Is(err, errNotReady) {
		t.Fatalf("try on an empty socket: %d, %v; want errNotReady", n, err)
	}
	if s.try {
		t.Fatal("try still set after a read")
	}
	if _, err := client.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	if !s.readable() {
		t.Fatal("readable: false with data sent")
	}
	if n, err := s.Read(buf); err != nil || string(buf[:n]) != "hi" {
		t.Fatalf("read after readable: %q, %v", buf[:n], err)
	}
	client.Close()
	if !s.readable() {
		t.Fatal("readable: false after the peer closed (an end is readable)")
	}
	s.try = true
	if n, err := s.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("try after the peer closed: %d, %v; want EOF", n, err)
	}
}

// readable returns false when the read deadline passes with nothing sent.
func TestSockConnReadableDeadline(t *testing.T) {
	s, _ := pair(t)
	_ = s.SetReadDeadline(time.Now().Add(-time.Second))
	if s.readable() {
		t.Fatal("readable: true past the deadline")
	}
}

// TLS treats a try that found nothing as temporary: the connection keeps working.
func TestSockConnTryUnderTLS(t *testing.T) {
	s, client := pair(t)
	srv, cl := handshake(t, s, client)
	_ = srv.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 8)
	s.try = true
	if _, err := srv.Read(buf); !errors.Is(err, errNotReady) {
		t.Fatalf("TLS read of an empty try: %v; want errNotReady", err)
	}
	if _, err := cl.Write([]byte("GET")); err != nil {
		t.Fatal(err)
	}
	if !s.readable() {
		t.Fatal("readable: false with a record sent")
	}
	if n, err := io.ReadFull(srv, buf[:3]); err != nil || string(buf[:n]) != "GET" {
		t.Fatalf("TLS read after the try: %q, %v", buf[:n], err)
	}
}

// batchConn holds writes while hold is set, so two TLS records can leave in one send.
type batchConn struct {
	net.Conn
	hold bool
	buf  []byte
}

func (c *batchConn) Write(p []byte) (int, error) {
	if c.hold {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// buffered finds a second request that TLS took from the socket with the first, without
// touching the socket; with nothing held it says so, and the connection keeps working.
func TestBufferedNoWait(t *testing.T) {
	s, client := pair(t)
	bc := &batchConn{Conn: client}
	srv, cl := handshake(t, s, bc)
	_ = srv.SetReadDeadline(time.Now().Add(10 * time.Second))
	bc.hold = true
	for _, m := range []string{"GET1", "GET2"} {
		if _, err := cl.Write([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	bc.hold = false
	if _, err := client.Write(bc.buf); err != nil { // both records in one send
		t.Fatal(err)
	}
	h := &h1conn{c: srv}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(srv, buf); err != nil || string(buf) != "GET1" {
		t.Fatalf("first record: %q, %v", buf, err)
	}
	if !buffered(h) || h.in.first[0] != 'G' {
		t.Fatalf("buffered: %v (%q); want the second record's first byte", h.in.hasByte, h.in.first[0])
	}
	h.in.hasByte = false
	if _, err := io.ReadFull(srv, buf[:3]); err != nil || string(buf[:3]) != "ET2" {
		t.Fatalf("rest of the second record: %q, %v", buf[:3], err)
	}
	if buffered(h) {
		t.Fatal("buffered: true with nothing held")
	}
	if _, err := cl.Write([]byte("GET3")); err != nil {
		t.Fatal(err)
	}
	if !s.readable() {
		t.Fatal("readable: false with a record sent")
	}
	if _, err := io.ReadFull(srv, buf); err != nil || string(buf) != "GET3" {
		t.Fatalf("after buffered: %q, %v", buf, err)
	}
}

// TestSockConnCopyKeepsNoWait: an io.Copy out of a sockConn reads through its own
// Read, so noWait holds (errNotReady, nothing taken) even with data waiting; the
// promoted WriteTo of the socket under it read the data past it.
func TestSockConnCopyKeepsNoWait(t *testing.T) {
	s, client := pair(t)
	if _, err := client.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	_ = client.Close()
	_ = s.SetReadDeadline(time.Now().Add(10 * time.Second))
	if !s.readable() {
		t.Fatal("the data did not arrive")
	}
	s.noWait = true
	var out bytes.Buffer
	n, err := io.Copy(&out, s)
	if n != 0 || !errors.Is(err, errNotReady) {
		t.Fatalf("io.Copy with noWait: %d bytes, %v; want none and errNotReady", n, err)
	}
	s.noWait = false
	if n, err := io.Copy(&out, s); n != 5 || err != nil || out.String() != "hello" {
		t.Fatalf("io.Copy: %d bytes %q, %v; want hello", n, out.String(), err)
	}
}
