package listener

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"

	"tlsgate/internal/httpproxy"
	"tlsgate/internal/lazytime"
)

// An HTTP/1 request's backend exchange ends when its client goes away, with the
// cause httpproxy.ErrClientClosed (then the backend connection is closed and the
// request logged as 499), or at the listener's end after its drain deadline. h1Context
// gives it a reqCtx that watchClient's watch and the listener's end cancel; an HTTP/2
// request's client is gone when its stream ends (a reset, the connection closed):
// h2Context.
func (l *Listener) h2Context(r *http.Request) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(l.ctx)
	after := context.AfterFunc(r.Context(), func() { cancel(httpproxy.ErrClientClosed) })
	return ctx, func() { after(); cancel(nil) }
}

// h1Context returns the context of w's request; call its end when the exchange is over.
// start is the request's upstream start on lazytime's clock (the client watch's delay
// counts from it).
func (l *Listener) h1Context(w *h1writer, r *http.Request, start int64) *reqCtx {
	rc := &w.rc // part of the writer's allocation
	rc.reset(l.ctx, w.h)
	rc.h.req.Store(rc)
	if l.ctx.Err() != nil { // ended before the store: cancelRequests did not see rc
		rc.cancel(context.Cause(l.ctx))
	}
	rc.watch = watchClient(w, r, rc, start)
	return rc
}

// end stops the request's client watch and ends its context, noting whether the
// context went out as a parent (held).
func (rc *reqCtx) end() {
	if rc.watch != nil {
		rc.watch.stop()
	}
	rc.h.req.Store(nil)
	rc.held = rc.cancelAsked(nil)
}

// canceler ends a request's context with a cause (reqCtx; an interface holding the
// pointer costs no allocation, a method value would).
type canceler interface{ cancel(cause error) }

// watchDelay is how long an HTTP/1 request is with its backend before its client is
// watched. Most requests are answered sooner, and for them the watch would cost a
// goroutine, a poll(2), two switches and a read deadline each (about 8 % of a
// keep-alive request); a per-request timer costs far less. A client that leaves within
// the delay is noticed when it passes: the backend exchange is cut at most this late.
const watchDelay = 50 * time.Millisecond

// clientWatch waits, on its own goroutine, for an HTTP/1 client to close its side of
// the connection while its request is with the backend (net/http's server does the
// same with a background read). It starts once the request has been with the backend
// for watchDelay and its body was read to its end (at once without a body): until then
// the body's reads see the close themselves, and the watch must not compete with them
// for the socket. Pipelined requests are not read: the watch looks for the peer's FIN
// only (hangup), so bytes waiting stay where they are.
//
// The delay's timer is re-armed lazily, as the connections' deadlines are
// (deadline.go): resetting and stopping a runtime timer per request cost a clock read
// and two updates of the runtime's timer heap (about 310 instructions with a pool's Get
// and Put). A watch serves a worker's run of requests on a connection (keptBufs) and
// then goes back to the pool with its timer. A request's arm notes when it started
// (armedAt) and sets the timer only when none is pending; a request's end leaves the
// timer running. When the timer fires it looks at the request armed now: one that has
// been with its backend for watchDelay is due; a later one (an earlier request armed
// the timer) gets the timer again for the rest of its delay; with none, the timer is
// left idle. So a request is due exactly watchDelay after its start, never earlier, and
// a busy connection costs one timer event per watchDelay instead of two timer updates
// per request.
type clientWatch struct {
	timer *time.Timer // runs fire; pending says whether it is set

	mu       sync.Mutex
	sock     *sockConn
	cancel   canceler      // the current request's context; nil between requests
	armedAt  int64         // the current request's start, lazytime's clock
	pending  bool          // the timer is set and has not fired yet (or its fire has not run)
	bodyRead bool          // the request's body was read to its end, or it has none
	due      bool          // watchDelay passed
	done     chan struct{} // closed when the watching goroutine ends; nil before start
	gen      uint64        // counts arms: a body's EOF after its request ended must not count for the next
	rearms   uint64        // fires that set the timer again for a later request (tests)
}

var watches = sync.Pool{New: func() any {
	cw := &clientWatch{}
	cw.timer = time.AfterFunc(time.Hour, cw.fire)
	cw.timer.Stop()
	return cw
}}

// watch returns the run's client watch, or one from the pool.
func (k *keptBufs) watch() *clientWatch {
	if k.cw == nil {
		k.cw = watches.Get().(*clientWatch)
	}
	return k.cw
}

// watchClient arms a watch of w's client for r, whose exchange started at start
// (lazytime's clock); nil when there is nothing to watch.
func watchClient(w *h1writer, r *http.Request, cancel canceler, start int64) *clientWatch {
	sock := socketOf(w.h.c)
	if sock == nil || httpproxy.First(r.Header, "Upgrade") != "" {
		// No socket to watch (a PROXY protocol connection), or an upgrade, whose relay
		// takes the connection over and reads it itself.
		return nil
	}
	cw := w.h.kept.watch()
	hasBody := r.Body != nil && r.Body != http.NoBody
	cw.mu.Lock()
	cw.sock, cw.cancel, cw.armedAt, cw.bodyRead, cw.due, cw.done = sock, cancel, start, !hasBody, false, nil
	cw.gen++
	gen := cw.gen
	if !cw.pending {
		// Set from now, a little after start: due no earlier than watchDelay after it.
		cw.pending = true
		cw.timer.Reset(watchDelay)
	}
	cw.mu.Unlock()
	if hasBody {
		r.Body = &watchAtEOF{ReadCloser: r.Body, cw: cw, gen: gen}
	}
	return cw
}

// fire: the timer ran out. The current request, if it has been with its backend for
// watchDelay, is due; a younger one gets the timer for the rest of its delay.
func (cw *clientWatch) fire() {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	if cw.cancel == nil || cw.due {
		cw.pending = false // no request waits for the delay: idle until the next arm
		return
	}
	if rest := cw.armedAt + int64(watchDelay) - lazytime.Now(); rest > 0 {
		cw.rearms++
		cw.timer.Reset(time.Duration(rest))
		return
	}
	cw.pending = false
	cw.due = true
	cw.startLocked()
}

// bodyDone: the body of the request of arm gen was read to its end (the listener
// discards what the handler left after the exchange, when the watch may serve another).
func (cw *clientWatch) bodyDone(gen uint64) {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	if gen != cw.gen {
		return
	}
	cw.bodyRead = true
	cw.startLocked()
}

func (cw *clientWatch) startLocked() {
	if cw.cancel == nil || !cw.due || !cw.bodyRead || cw.done != nil {
		return
	}
	done, sock, cancel := make(chan struct{}), cw.sock, cw.cancel
	cw.done = done
	// The idle wait's or the header's read deadline may still be armed (lazy
	// deadlines, readHeader); stop sets one in the past, under cw.mu after this.
	_ = sock.SetReadDeadline(time.Time{})
	go func() {
		defer close(done)
		if sock.waitHangup() {
			cancel.cancel(httpproxy.ErrClientClosed)
		}
	}()
}

// stop ends the watch of the current request and waits for its goroutine if it
// started, leaving the socket's read deadline in the past then (the HTTP/1 loop sets
// its own before it reads again). The timer is left as it is (it finds no request when
// it fires); the watch stays with the run for its next request.
func (cw *clientWatch) stop() {
	cw.mu.Lock()
	done, sock := cw.done, cw.sock
	cw.sock, cw.cancel, cw.done = nil, nil, nil
	cw.mu.Unlock()
	if done != nil {
		_ = sock.SetReadDeadline(time.Unix(1, 0))
		<-done
	}
}

// watchAtEOF starts a client watch when the request body has been read to its end.
type watchAtEOF struct {
	io.ReadCloser
	cw  *clientWatch
	gen uint64
}

func (b *watchAtEOF) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.cw.bodyDone(b.gen)
	}
	return n, err
}
