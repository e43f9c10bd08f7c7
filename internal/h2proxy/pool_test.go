package h2proxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// h2cBackend is a net/http server speaking h2c on loopback; conns counts the
// connections it accepted.
type h2cBackend struct {
	addr  string
	conns atomic.Int32
}

func startH2C(t *testing.T, maxStreams int, h http.HandlerFunc) *h2cBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &h2cBackend{addr: ln.Addr().String()}
	p := &http.Protocols{}
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: p, HTTP2: &http.HTTP2Config{MaxConcurrentStreams: maxStreams},
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				b.conns.Add(1)
			}
		}}
	done := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(done) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return b
}

// serve sends one request through p to b and returns the recorded answer.
func serve(p *Proxy, b *h2cBackend, body io.Reader) *httptest.ResponseRecorder {
	method := http.MethodGet
	if body != nil {
		method = http.MethodPost
	}
	r := httptest.NewRequest(method, "http://example.test/x", body)
	if body != nil {
		r.ContentLength = -1 // a stream
	}
	w := httptest.NewRecorder()
	p.Serve(w, r, &Route{Target: b.addr})
	return w
}

// TestStreamLimit: past the backend's concurrent-stream limit a new connection is
// opened instead of queueing, and connections are shared up to it. Requests arrive one
// after the other, each once the previous reached the backend and every connection has
// read the backend's SETTINGS: until they arrive a connection assumes 100, as
// net/http's own pool does (the backend entering a handler does not mean the client
// has read the SETTINGS sent before it: under load it had not, and a stream queued).
func TestStreamLimit(t *testing.T) {
	entered, release := make(chan struct{}, 8), make(chan struct{})
	b := startH2C(t, 2, func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	})
	p := New(nil)
	defer p.Close()
	var mu sync.Mutex
	var seen []*http.ClientConn
	p.testHookConn = func(cc *http.ClientConn) {
		mu.Lock()
		defer mu.Unlock()
		if !slices.Contains(seen, cc) {
			seen = append(seen, cc)
		}
	}
	// settled reports whether every connection used so far knows the limit of 2.
	settled := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, cc := range seen {
			if cc.Err() == nil && cc.Available()+cc.InFlight() > 2 {
				return false
			}
		}
		return true
	}
	var wg sync.WaitGroup
	codes := make(chan int, 5)
	for range 5 {
		wg.Go(func() { codes <- serve(p, b, nil).Code })
		select {
		case <-entered:
		case <-time.After(10 * time.Second):
			t.Fatal("a request queued instead of opening a connection")
		}
		tick := time.NewTicker(time.Millisecond) // a readiness probe: SETTINGS have no hook
		for deadline := time.Now().Add(10 * time.Second); !settled(); <-tick.C {
			if time.Now().After(deadline) {
				t.Fatal("a connection never read the backend's SETTINGS")
			}
		}
		tick.Stop()
	}
	if n := b.conns.Load(); n != 3 {
		t.Errorf("5 streams at a limit of 2 took %d connections, want 3", n)
	}
	close(release)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusOK {
			t.Fatalf("status %d", c)
		}
	}
}

// TestGoAway: after a backend's GOAWAY (net/http sends one after a response with
// Connection: close) the next request goes on a new connection and succeeds.
func TestGoAway(t *testing.T) {
	var n atomic.Int32
	b := startH2C(t, 0, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set("Connection", "close")
		}
	})
	p := New(nil)
	defer p.Close()
	for i := range 3 {
		if w := serve(p, b, nil); w.Code != http.StatusOK {
			t.Fatalf("request %d: status %d", i, w.Code)
		}
	}
	if c := b.conns.Load(); c != 2 {
		t.Fatalf("%d connections, want 2 (one replaced after GOAWAY)", c)
	}
}

// TestRetryOnlyUnsent: a request whose connection broke before anything of it was
// sent goes on a new connection; one whose body had begun to go is not sent again.
func TestRetryOnlyUnsent(t *testing.T) {
	var got atomic.Int32
	entered := make(chan struct{}, 4)
	b := startH2C(t, 0, func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		if r.Method == http.MethodPost {
			buf := make([]byte, 10)
			_, _ = io.ReadFull(r.Body, buf)
			entered <- struct{}{}
			_, _ = io.Copy(io.Discard, r.Body)
		}
	})
	p := New(nil)
	defer p.Close()
	var broken atomic.Bool
	p.testHookConn = func(cc *http.ClientConn) {
		if broken.CompareAndSwap(false, true) {
			_ = cc.Close() // broken after the stream was reserved, before it was written
		}
	}
	if w := serve(p, b, nil); w.Code != http.StatusOK {
		t.Fatalf("unsent request: status %d, want it retried", w.Code)
	}
	if got.Load() != 1 {
		t.Fatalf("backend got %d requests", got.Load())
	}

	// The body's first bytes reach the backend, then the connection breaks.
	conns := make(chan *http.ClientConn, 4)
	p.testHookConn = func(c *http.ClientConn) { conns <- c }
	pr, pw := io.Pipe()
	defer pw.Close()
	done := make(chan *httptest.ResponseRecorder)
	go func() { done <- serve(p, b, pr) }()
	if _, err := pw.Write([]byte("first part")); err != nil {
		t.Fatal(err)
	}
	<-entered
	_ = (<-conns).Close()
	w := <-done
	if w.Code != http.StatusBadGateway || got.Load() != 2 || len(conns) != 0 {
		t.Fatalf("status %d, backend got %d requests, %d more attempts: a request whose body was sent went again",
			w.Code, got.Load(), len(conns))
	}
}

// closings counts the connections a backend closed (ConnState StateClosed: the proxy
// closed its end) on a channel.
func startH2CClosings(t *testing.T, maxStreams int, h http.HandlerFunc) (*h2cBackend, chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &h2cBackend{addr: ln.Addr().String()}
	closed := make(chan struct{}, 16)
	p := &http.Protocols{}
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: p, HTTP2: &http.HTTP2Config{MaxConcurrentStreams: maxStreams},
		ConnState: func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				b.conns.Add(1)
			case http.StateClosed:
				closed <- struct{}{}
			}
		}}
	done := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(done) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return b, closed
}

func waitClosed(t *testing.T, closed chan struct{}, what string) {
	t.Helper()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no connection closed within 10 s", what)
	}
}

// TestIdleLimits: a target group's idle_timeout and max_idle_per_target hold for its
// HTTP/2 connections as for HTTP/1.1 ones (issue 12: a per-target idle cap and idle
// timeout, both settable). Before, an h2 pool kept every connection for a fixed 90 s.
func TestIdleLimits(t *testing.T) {
	ok := func(w http.ResponseWriter, r *http.Request) {}
	send := func(p *Proxy, b *h2cBackend, rt Route) {
		t.Helper()
		r := httptest.NewRequest(http.MethodGet, "http://example.test/x", nil)
		w := httptest.NewRecorder()
		rt.Target = b.addr
		p.Serve(w, r, &rt)
		if w.Code != http.StatusOK {
			t.Fatalf("status %d", w.Code)
		}
	}
	t.Run("idle_timeout", func(t *testing.T) {
		b, closed := startH2CClosings(t, 0, ok)
		p := New(nil)
		defer p.Close()
		send(p, b, Route{IdleTimeout: 200 * time.Millisecond, MaxIdle: 32})
		waitClosed(t, closed, "idle for idle_timeout")
	})
	t.Run("max_idle_per_target 0", func(t *testing.T) {
		b, closed := startH2CClosings(t, 0, ok)
		p := New(nil)
		defer p.Close()
		rt := Route{IdleTimeout: time.Hour, MaxIdle: 0}
		send(p, b, rt)
		waitClosed(t, closed, "the stream ended with max_idle_per_target 0")
		send(p, b, rt)
		if n := b.conns.Load(); n != 2 {
			t.Fatalf("%d connections, want 2: none is kept", n)
		}
	})
	t.Run("kept", func(t *testing.T) {
		b, closed := startH2CClosings(t, 0, ok)
		p := New(nil)
		defer p.Close()
		rt := Route{IdleTimeout: time.Hour, MaxIdle: 1}
		for range 3 {
			send(p, b, rt)
		}
		if n := b.conns.Load(); n != 1 || len(closed) != 0 {
			t.Fatalf("%d connections, %d closed: want one, kept", n, len(closed))
		}
	})
	t.Run("max_idle_per_target 1 after a burst", func(t *testing.T) {
		entered, release := make(chan struct{}, 4), make(chan struct{})
		b, closed := startH2CClosings(t, 1, func(w http.ResponseWriter, r *http.Request) {
			entered <- struct{}{}
			<-release
		})
		p := New(nil)
		defer p.Close()
		var mu sync.Mutex
		var seen []*http.ClientConn
		p.testHookConn = func(cc *http.ClientConn) {
			mu.Lock()
			defer mu.Unlock()
			if !slices.Contains(seen, cc) {
				seen = append(seen, cc)
			}
		}
		settled := func() bool { // as in TestStreamLimit: every connection knows the limit of 1
			mu.Lock()
			defer mu.Unlock()
			for _, cc := range seen {
				if cc.Err() == nil && cc.Available()+cc.InFlight() > 1 {
					return false
				}
			}
			return true
		}
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() { send(p, b, Route{IdleTimeout: time.Hour, MaxIdle: 1}) })
			select {
			case <-entered:
			case <-time.After(10 * time.Second):
				t.Fatal("a request queued instead of opening a connection")
			}
			tick := time.NewTicker(time.Millisecond)
			for deadline := time.Now().Add(10 * time.Second); !settled(); <-tick.C {
				if time.Now().After(deadline) {
					t.Fatal("a connection never read the backend's SETTINGS")
				}
			}
			tick.Stop()
		}
		if n := b.conns.Load(); n != 3 {
			t.Fatalf("3 streams at a limit of 1 took %d connections, want 3", n)
		}
		close(release)
		wg.Wait()
		waitClosed(t, closed, "first connection past the cap")
		waitClosed(t, closed, "second connection past the cap")
		select {
		case <-closed:
			t.Fatal("all three connections closed: max_idle_per_target 1 keeps one")
		case <-time.After(100 * time.Millisecond): // the third is kept: nothing more closes
		}
	})
}
