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
