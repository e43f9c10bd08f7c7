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
)

// A client that closes its connection while its request is with the backend is seen
// once the watch's delay has passed, although it left before: the exchange's context
// ends with ErrClientClosed.
func TestClientWatchAfterDelay(t *testing.T) {
	s, client := pair(t)
	w := &h1writer{h1resp: h1resp{h: &h1conn{c: s}}}
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	ctx := newReqCtx(context.Background())
	cw := watchClient(w, r, ctx)
	if cw == nil {
		t.Fatal("no watch for a plain socket")
	}
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
	cw := watchClient(w, r, newReqCtx(context.Background()))
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
