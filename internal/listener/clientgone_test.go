package listener

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"tlsgate/internal/httpproxy"
	"tlsgate/internal/lazytime"
)

// A client that closes its connection while its request is with the backend is seen
// once the watch's delay has passed, although it left before: the exchange's context
// ends with ErrClientClosed.
func TestClientWatchAfterDelay(t *testing.T) {
	s, client := pair(t)
	w := &h1writer{h1resp: h1resp{h: &h1conn{c: s}}}
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	ctx := newReqCtx(context.Background())
	cw := watchClient(w, r, ctx, lazytime.Now())
	if cw == nil {
		t.Fatal("no watch for a plain socket")
	}
	defer w.h.kept.release()
	defer cw.stop()
	client.Close()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the client's close was not seen within 10 s")
	}
	if !errors.Is(ctx.Cause(), httpproxy.ErrClientClosed) {
		t.Fatalf("cause %v, want ErrClientClosed", ctx.Cause())
	}
}

// The body of a request read to its end after the request's exchange ended (the loop
// discards what the handler left) must not start the pooled watch for a later request
// whose body is still unread: the watch would compete with that body's reads.
func TestClientWatchStaleBodyEOF(t *testing.T) {
	s, _ := pair(t)
	w := &h1writer{h1resp: h1resp{h: &h1conn{c: s}}}
	r, _ := http.NewRequest(http.MethodPost, "/", strings.NewReader("body"))
	cw := watchClient(w, r, newReqCtx(context.Background()), lazytime.Now())
	body := r.Body
	cw.stop()
	// The same watch armed again for a later request that has a body, its delay passed.
	cw.mu.Lock()
	cw.sock, cw.cancel, cw.bodyRead, cw.due = s, newReqCtx(context.Background()), false, true
	cw.gen++
	cw.mu.Unlock()
	if _, err := io.Copy(io.Discard, body); err != nil {
		t.Fatal(err)
	}
	cw.mu.Lock()
	started := cw.done != nil
	cw.mu.Unlock()
	if started {
		t.Fatal("an earlier request's body EOF started the watch of the next one")
	}
	cw.mu.Lock()
	cw.sock, cw.cancel = nil, nil
	cw.mu.Unlock()
}

// The delay's timer is lazy: a request armed while the timer of an earlier request of
// the run is still pending does not set it; the timer's fire finds the later request
// younger than watchDelay and sets itself again for the rest. The watch still starts
// for it, and not before watchDelay after its start.
func TestClientWatchLazyRearm(t *testing.T) {
	s, client := pair(t)
	w := &h1writer{h1resp: h1resp{h: &h1conn{c: s}}}
	defer w.h.kept.release()
	r1, _ := http.NewRequest(http.MethodGet, "/", nil)
	first := watchClient(w, r1, newReqCtx(context.Background()), lazytime.Now())
	first.stop() // answered at once: the timer stays pending
	// The next request of the run is given a start 1 s ahead: whenever a fire of the
	// timer finds it (the first's, or the one this arm sets if the first's already found
	// no request, late as a loaded machine may run it), most of its delay is left.
	start := lazytime.Now() + int64(time.Second)
	r2, _ := http.NewRequest(http.MethodGet, "/", nil)
	ctx := newReqCtx(context.Background())
	cw := watchClient(w, r2, ctx, start)
	if cw != first {
		t.Fatal("the run's second request got another watch")
	}
	defer cw.stop()
	client.Close()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the client's close was not seen within 10 s")
	}
	if now := lazytime.Now(); now < start+int64(watchDelay) {
		t.Fatalf("the watch started %v after the request's start, before its delay (%v)", time.Duration(now-start), watchDelay)
	}
	if !errors.Is(ctx.Cause(), httpproxy.ErrClientClosed) {
		t.Fatalf("cause %v, want ErrClientClosed", ctx.Cause())
	}
	cw.mu.Lock()
	rearms := cw.rearms
	cw.mu.Unlock()
	if rearms == 0 {
		t.Fatal("the timer was set for the second request itself: the lazy re-arm did not run")
	}
}

// A timer that fired with no request in flight is idle: the next request sets it again
// and is watched.
func TestClientWatchAfterIdleFire(t *testing.T) {
	s, client := pair(t)
	w := &h1writer{h1resp: h1resp{h: &h1conn{c: s}}}
	defer w.h.kept.release()
	r1, _ := http.NewRequest(http.MethodGet, "/", nil)
	first := watchClient(w, r1, newReqCtx(context.Background()), lazytime.Now())
	first.stop()
	// The timer fires between requests (stopped here and its fire run by hand, so that
	// it cannot fire again on its own).
	if first.timer.Stop() { // else it fired already, as slow as this machine may be
		first.fire()
		first.mu.Lock()
		pending := first.pending
		first.mu.Unlock()
		if pending {
			t.Fatal("a fire with no request in flight left the timer marked pending")
		}
	}
	r2, _ := http.NewRequest(http.MethodGet, "/", nil)
	ctx := newReqCtx(context.Background())
	cw := watchClient(w, r2, ctx, lazytime.Now())
	defer cw.stop()
	client.Close()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the client's close was not seen within 10 s: the idle timer was not set again")
	}
}
