package listener

import (
	"context"
	"sync"
)

// reqCtx is the context of an HTTP/1 request's backend exchange. context.WithCancelCause
// under the listener's context and the proxy's context.AfterFunc on it cost about five
// allocations per request and a lock of the listener's context, shared by every
// connection; this one is a single allocation, runs the proxy's one function itself
// (httpproxy.Cancelable), and learns of the listener's end from the listener, which
// cancels the current request of each HTTP/1 connection (cancelRequests).
type reqCtx struct {
	context.Context // the listener's: Deadline and Value

	mu    sync.Mutex
	done  chan struct{} // made when asked for
	err   error
	cause error
	after func() // run when cancelled, unless withdrawn
	ran   bool   // after ran

	h     *h1conn      // whose request this is (h.req)
	watch *clientWatch // the client's watch, nil when none
	// held: its Done was asked for, so it went out as a parent (context.WithTimeout
	// under it, the proxy's dial). context then waits on it in a goroutine of its own,
	// which may run after the request ended and read it (Err, Value): it must not be
	// reset for another request (serveOne leaves it, with its writer, to the GC).
	// Written by end, on the request's goroutine.
	held bool
}

func newReqCtx(parent context.Context) *reqCtx { return &reqCtx{Context: parent} }

// reset makes c a new request's context under parent: a writer's reqCtx serves the
// requests of a run in turn, and cancelRequests may still hold the last one's (it then
// cancels this one, as the listener is going away: no harm), so under the lock.
func (c *reqCtx) reset(parent context.Context, h *h1conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Context, c.h, c.watch, c.held = parent, h, nil, false
	c.done, c.err, c.cause, c.after, c.ran = nil, nil, nil, nil, false
}

func (c *reqCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.err != nil {
			close(c.done)
		}
	}
	return c.done
}

func (c *reqCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Cause is context.Cause's answer for this context (which context.Cause cannot find in
// a context of its own type).
func (c *reqCtx) Cause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cause
}

// cancel ends the context with cause (context.Canceled when nil); the first call counts.
func (c *reqCtx) cancel(cause error) { c.cancelAsked(cause) }

// cancelAsked is cancel; it also reports whether the context's Done was asked for.
func (c *reqCtx) cancelAsked(cause error) (asked bool) {
	c.mu.Lock()
	asked = c.done != nil
	if c.err != nil {
		c.mu.Unlock()
		return asked
	}
	c.err, c.cause = context.Canceled, cause
	if cause == nil {
		c.cause = context.Canceled
	}
	if c.done != nil {
		close(c.done)
	}
	f := c.after
	c.after, c.ran = nil, f != nil
	c.mu.Unlock()
	if f != nil {
		f()
	}
	return asked
}

// OnCancel has f run when the context ends (at once if it has); f must not block.
func (c *reqCtx) OnCancel(f func()) {
	c.mu.Lock()
	if c.err == nil {
		c.after = f
		c.mu.Unlock()
		return
	}
	c.ran = true
	c.mu.Unlock()
	f()
}

// StopOnCancel withdraws OnCancel's function: false when it ran already.
func (c *reqCtx) StopOnCancel() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.after = nil
	return !c.ran
}

// cancelRequests cancels the request in flight on every HTTP/1 connection, with the
// listener context's cause: the drain ran out (the listener's context ended).
func (l *Listener) cancelRequests() {
	cause := context.Cause(l.ctx)
	l.h1mu.Lock()
	defer l.h1mu.Unlock()
	for h := range l.h1conns {
		if rc := h.req.Load(); rc != nil {
			rc.cancel(cause)
		}
	}
}
