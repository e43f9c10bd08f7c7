package httpproxy

import (
	"context"
	"net"
	"testing"
	"time"

	"tlsgate/internal/lazytime"
)

// poolRig is a pool and a loopback listener for its one target, both closed when the
// test ends.
type poolRig struct {
	ln  net.Listener
	p   *pool
	key poolKey
	lim limits
}

func newPoolRig(t *testing.T) *poolRig {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	p := newPool(nil)
	t.Cleanup(p.close)
	return &poolRig{ln: ln, p: p, key: poolKey{addr: ln.Addr().String()}, lim: limits{maxIdle: 3, idleTimeout: time.Minute}}
}

// get takes a connection from the pool (pool.get's fresh and retryable).
func (r *poolRig) get(t *testing.T, fresh, retryable bool) *backendConn {
	t.Helper()
	bc, err := r.p.get(context.Background(), r.key, r.lim, time.Second, fresh, retryable, lazytime.Now())
	if err != nil {
		t.Fatal(err)
	}
	return bc
}

// accept returns the backend's end of the next connection dialled, closed when the
// test ends.
func (r *poolRig) accept(t *testing.T) net.Conn {
	t.Helper()
	c, err := r.ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// dialPooled takes a new connection from a new pool and returns it with the backend's end,
// both closed when the test ends.
func dialPooled(t *testing.T) (*backendConn, net.Conn) {
	t.Helper()
	r := newPoolRig(t)
	bc := r.get(t, true, false)
	t.Cleanup(func() { _ = bc.conn.Close() })
	return bc, r.accept(t)
}

// TestPoolIdleCap (issue 12 item 7): a target keeps at most max_idle_per_target idle
// connections; those past the cap are closed when returned (before: up to 256).
func TestPoolIdleCap(t *testing.T) {
	r := newPoolRig(t)
	var conns []*backendConn
	for range 5 {
		conns = append(conns, r.get(t, true, false))
		r.accept(t)
	}
	for _, bc := range conns {
		r.p.put(bc, lazytime.Now())
	}
	r.p.mu.Lock()
	n := len(r.p.idle[r.key])
	r.p.mu.Unlock()
	if n != 3 {
		t.Fatalf("%d idle connections kept, want the cap of 3", n)
	}
}

// TestPoolDropsClosed: an idle connection the backend closed is not handed out; a new
// one is dialled.
func TestPoolDropsClosed(t *testing.T) {
	r := newPoolRig(t)
	bc := r.get(t, false, false)
	server := r.accept(t)
	r.p.put(bc, lazytime.Now())
	server.Close()
	// Wait until the FIN has arrived, by reading on the socket.
	_ = bc.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := bc.br.Peek(1); err == nil {
		t.Fatal("read data from a closed backend")
	}
	_ = bc.conn.SetReadDeadline(time.Time{})
	got := r.get(t, false, false)
	if got == bc || got.reused {
		t.Fatal("a connection the backend closed was reused")
	}
}

// TestPoolUncheckedOnlyRetryable: a connection used moments ago is handed to a
// retryable request (idempotent, no body) without the idle check, even when the
// backend has closed it (the request will meet the close and go again); any other
// request gets it checked, and the closed one is dropped for a new one.
func TestPoolUncheckedOnlyRetryable(t *testing.T) {
	r := newPoolRig(t)
	bc := r.get(t, false, true)
	r.accept(t).Close()
	// Wait until the FIN has arrived, by reading on the socket.
	_ = bc.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := bc.br.Peek(1); err == nil {
		t.Fatal("read data from a closed backend")
	}
	_ = bc.conn.SetReadDeadline(time.Time{})
	r.p.put(bc, lazytime.Now())
	if got := r.get(t, false, true); got != bc || !got.reused {
		t.Fatal("a retryable request did not get the connection put back moments ago")
	}
	r.p.put(bc, lazytime.Now())
	got := r.get(t, false, false)
	if got == bc || got.reused {
		t.Fatal("a request that cannot go again got a connection the backend closed, unchecked")
	}
	_ = got.conn.Close()
	// Older than uncheckedFor: checked for every request.
	bc.idleAt -= int64(2 * uncheckedFor)
	r.p.mu.Lock()
	r.p.idle[r.key] = append(r.p.idle[r.key], bc)
	r.p.mu.Unlock()
	got = r.get(t, false, true)
	if got == bc {
		t.Fatal("a connection idle past uncheckedFor was handed out unchecked")
	}
	_ = got.conn.Close()
}

// TestPoolIdleTimeout (issue 12: the idle timeout is settable): a connection idle for
// less than the group's idle_timeout is reused; one idle for it or longer is closed
// when next taken, and a new one dialled. The pool counts ages to the caller's clock
// reading, so no time passes here.
func TestPoolIdleTimeout(t *testing.T) {
	r := newPoolRig(t)
	r.lim.idleTimeout = 10 * time.Second
	bc := r.get(t, true, false)
	backend := r.accept(t)
	now := lazytime.Now()
	r.p.put(bc, now)
	got, err := r.p.get(context.Background(), r.key, r.lim, time.Second, false, false, now+int64(9*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if got != bc {
		t.Fatal("a connection idle for 9 s of a 10 s idle_timeout was not reused")
	}
	r.p.put(got, now)
	got, err = r.p.get(context.Background(), r.key, r.lim, time.Second, false, false, now+int64(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = got.conn.Close() })
	if got == bc {
		t.Fatal("a connection idle for its whole idle_timeout was reused")
	}
	r.accept(t)
	_ = backend.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := backend.Read(make([]byte, 1)); err == nil {
		t.Fatal("the expired idle connection was not closed")
	}
}
