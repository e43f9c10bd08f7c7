package httpproxy

import (
	"context"
	"net"
	"testing"
	"time"
)

// TestPoolIdleCap (issue 12 item 7): a target keeps at most max_idle_per_target idle
// connections; those past the cap are closed when returned (before: up to 256).
func TestPoolIdleCap(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	p := newPool(nil)
	defer p.close()
	key := poolKey{addr: ln.Addr().String()}
	lim := limits{maxIdle: 3, idleTimeout: time.Minute}
	var conns []*backendConn
	for range 5 {
		bc, err := p.get(context.Background(), key, lim, time.Second, true, false)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, bc)
		<-accepted
	}
	for _, bc := range conns {
		p.put(bc)
	}
	p.mu.Lock()
	n := len(p.idle[key])
	p.mu.Unlock()
	if n != 3 {
		t.Fatalf("%d idle connections kept, want the cap of 3", n)
	}
}

// TestPoolDropsClosed: an idle connection the backend closed is not handed out; a new
// one is dialled.
func TestPoolDropsClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := newPool(nil)
	defer p.close()
	key := poolKey{addr: ln.Addr().String()}
	lim := limits{maxIdle: 3, idleTimeout: time.Minute}
	bc, err := p.get(context.Background(), key, lim, time.Second, false, false)
	if err != nil {
		t.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	p.put(bc)
	server.Close()
	// Wait until the FIN has arrived, by reading on the pooled socket.
	_ = bc.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := bc.br.Peek(1); err == nil {
		t.Fatal("read data from a closed backend")
	}
	_ = bc.conn.SetReadDeadline(time.Time{})
	got, err := p.get(context.Background(), key, lim, time.Second, false, false)
	if err != nil {
		t.Fatal(err)
	}
	if got == bc || got.reused {
		t.Fatal("a connection the backend closed was reused")
	}
}

// TestPoolUncheckedOnlyRetryable: a connection used moments ago is handed to a
// retryable request (idempotent, no body) without the idle check, even when the
// backend has closed it (the request will meet the close and go again); any other
// request gets it checked, and the closed one is dropped for a new one.
func TestPoolUncheckedOnlyRetryable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := newPool(nil)
	defer p.close()
	key := poolKey{addr: ln.Addr().String()}
	lim := limits{maxIdle: 3, idleTimeout: time.Minute}
	bc, err := p.get(context.Background(), key, lim, time.Second, false, true)
	if err != nil {
		t.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	server.Close()
	// Wait until the FIN has arrived, by reading on the socket.
	_ = bc.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := bc.br.Peek(1); err == nil {
		t.Fatal("read data from a closed backend")
	}
	_ = bc.conn.SetReadDeadline(time.Time{})
	p.put(bc)
	got, err := p.get(context.Background(), key, lim, time.Second, false, true)
	if err != nil {
		t.Fatal(err)
	}
	if got != bc || !got.reused {
		t.Fatal("a retryable request did not get the connection put back moments ago")
	}
	p.put(bc)
	got, err = p.get(context.Background(), key, lim, time.Second, false, false)
	if err != nil {
		t.Fatal(err)
	}
	if got == bc || got.reused {
		t.Fatal("a request that cannot go again got a connection the backend closed, unchecked")
	}
	_ = got.conn.Close()
	// Older than uncheckedFor: checked for every request.
	bc.idleAt -= int64(2 * uncheckedFor)
	p.mu.Lock()
	p.idle[key] = append(p.idle[key], bc)
	p.mu.Unlock()
	got, err = p.get(context.Background(), key, lim, time.Second, false, true)
	if err != nil {
		t.Fatal(err)
	}
	if got == bc {
		t.Fatal("a connection idle past uncheckedFor was handed out unchecked")
	}
	_ = got.conn.Close()
}
