package listener

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"tlsgate/internal/backend"
	"tlsgate/internal/config"
	"tlsgate/internal/httpproxy"
	"tlsgate/internal/metrics"
)

var _ httpproxy.Cancelable = (*reqCtx)(nil)

// reqCtx keeps AfterFunc's contract for its one function: it runs once at cancel (at
// once when registered after), a withdrawn one never, and stop tells which happened;
// Done, Err and Cause follow the first cancel.
func TestReqCtx(t *testing.T) {
	t.Run("runs at cancel", func(t *testing.T) {
		rc := newReqCtx(context.Background())
		ran := 0
		rc.OnCancel(func() { ran++ })
		rc.cancel(httpproxy.ErrClientClosed)
		rc.cancel(errors.New("second"))
		if ran != 1 || rc.StopOnCancel() {
			t.Fatalf("ran %d times, stop true; want once and false", ran)
		}
		select {
		case <-rc.Done():
		default:
			t.Fatal("Done not closed")
		}
		if !errors.Is(rc.Err(), context.Canceled) || !errors.Is(rc.Cause(), httpproxy.ErrClientClosed) {
			t.Fatalf("err %v, cause %v", rc.Err(), rc.Cause())
		}
	})
	t.Run("withdrawn", func(t *testing.T) {
		rc := newReqCtx(context.Background())
		done := rc.Done()
		ran := false
		rc.OnCancel(func() { ran = true })
		if !rc.StopOnCancel() {
			t.Fatal("stop before cancel: false")
		}
		rc.cancel(nil)
		<-done
		if ran || !errors.Is(rc.Cause(), context.Canceled) {
			t.Fatalf("ran %v, cause %v; want not run, Canceled", ran, rc.Cause())
		}
	})
	t.Run("registered after cancel", func(t *testing.T) {
		rc := newReqCtx(context.Background())
		rc.cancel(nil)
		ran := false
		rc.OnCancel(func() { ran = true })
		if !ran || rc.StopOnCancel() {
			t.Fatal("a function registered after cancel must run at once, and stop report false")
		}
	})
}

// TestReqCtxReset: a reused reqCtx keeps nothing of its last request (its end, its
// cancel function, its channel), every field but the lock and the new parent and
// connection zero; a field added later is covered too.
func TestReqCtxReset(t *testing.T) {
	rc := newReqCtx(context.Background())
	rc.watch = &clientWatch{}
	_ = rc.Done()
	rc.OnCancel(func() {})
	rc.cancel(errors.New("gone"))
	h := &h1conn{}
	rc.reset(context.TODO(), h)
	v := reflect.ValueOf(rc).Elem()
	for i := range v.NumField() {
		switch name := v.Type().Field(i).Name; name {
		case "mu":
		case "Context":
			if rc.Context != context.TODO() {
				t.Errorf("Context not the new parent")
			}
		case "h":
			if rc.h != h {
				t.Errorf("h not the new connection")
			}
		default:
			if !v.Field(i).IsZero() {
				t.Errorf("%s kept from the last request", name)
			}
		}
	}
	if rc.Err() != nil {
		t.Fatalf("Err %v after reset", rc.Err())
	}
}

// TestReqCtxHeldNotReused: a request whose context went out as a parent (the proxy's
// dial: context.WithTimeout under it starts a goroutine, context's propagateCancel,
// that may read it after the request ended) leaves it, with its writer, to the GC: the
// connection's next request gets a context of its own. Reset in place for that next
// request, it was rewritten under the late goroutine (a data race on its Context), and
// its cancel was undone: a goroutine that saw it end then read Err as nil and panicked
// ("context: internal error: missing cancel error"), taking the process down. This
// test reads the first request's context through the dial's after its response, as that
// goroutine does, then sends the next request on the connection: under -race, resetting
// the same context for it is reported.
func TestReqCtxHeldNotReused(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}))
	defer be.Close()
	g, err := backend.NewGroup(&config.TargetGroup{ID: "g", Targets: []config.Target{{Address: be.Listener.Addr().String()}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := NewState(&State{ID: "held", Protocol: config.ProtoHTTP, Default: &Domain{Group: g},
		HeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second}, nil)
	dialed := make(chan context.Context, 1)
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		select {
		case dialed <- ctx: // the first dial's: a child of the first request's context
		default:
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := New(ln, st, Deps{Log: slog.New(slog.DiscardHandler), Metrics: metrics.New(), Dial: dial})
	served := make(chan error, 1)
	go func() { served <- l.Serve() }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = l.Shutdown(ctx)
		<-served
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	get := func() {
		t.Helper()
		if _, err := c.Write([]byte("GET /x HTTP/1.1\r\nHost: held.test\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Close {
			t.Fatalf("status %d, close %v", resp.StatusCode, resp.Close)
		}
	}
	get()
	// As the late goroutine does (context.Cause): the dial's Value asks the request's.
	type key struct{}
	_ = (<-dialed).Value(key{})
	get()
}
