package httpproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"tlsgate/internal/lazytime"
)

// errBadRequest marks a request that cannot be written to a backend as it is (a
// header or target with bytes HTTP/1.1 cannot carry, as HTTP/2 requests might have).
var errBadRequest = errors.New("request cannot be forwarded")

// forward sends r to its route's target over a pooled HTTP/1.1 connection and copies the
// response to w, in this goroutine (the request body, if any, is written by a second
// one so a backend that answers while reading cannot deadlock us).
//
// Failures before the response (the target group's policy, backend.Policy): a connect
// that fails goes to another target, up to Retries times; so does a request whose
// reused connection failed before any byte of the response, when it has no body, or
// when no other target is left it goes on a new connection to the same one (the
// backend may have closed it while idle: no fault of the target). A request whose body was sent is never sent again. Connect failures and
// response timeouts are reported to the group (outlier ejection); the client going
// away ends the exchange at once and is answered 499.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, route *Route) {
	ctx := route.ctx(r)
	pol := route.policy()
	lim := limits{maxIdle: pol.MaxIdlePerTarget, idleTimeout: pol.IdleTimeout}
	hasBody := r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
	// A request that goes again when its connection was closed unanswered may take a
	// recently used one unchecked (pool.get): the retry below covers it.
	retryable := !hasBody && idempotent(r.Method)
	tried := append(route.tried[:0], route.Picked) // in the route: no allocation of its own
	fresh := false
	handed := route.Start // the first attempt starts when the caller handed r over
	for retries := 0; ; {
		key := poolKey{addr: route.Target, tls: route.BackendTLS}
		start := handed // for durations only: the monotonic clock alone
		if handed = 0; start == 0 {
			start = lazytime.Now()
		}
		bc, err := p.pool.get(ctx, key, lim, pol.ConnectTimeout, fresh, retryable, start)
		route.Connected = time.Duration(lazytime.Now() - start)
		if err != nil {
			if p.gone(w, r, route, ctx) {
				return
			}
			route.report(err)
			if retries < pol.Retries {
				if t := route.retry(tried); t != nil {
					tried = append(tried, t)
					retries++
					fresh = false
					continue
				}
			}
			p.fail(w, route, err)
			return
		}
		// The client going away (HTTP/2 stream reset, HTTP/1 close, shutdown) ends the
		// exchange.
		stop := onCancel(ctx, bc)
		resp, body, err := roundTrip(ctx, bc, r, route, hasBody, pol.ResponseTimeout)
		if err != nil {
			stop.StopOnCancel()
			// Whether the client left is read before abort: cutting the client's body
			// read (below) can end the request's context too (net/http cancels it when
			// its background read fails), and that is our doing, not the client's.
			left := ctx.Err() != nil
			cut, berr := abort(w, bc, body)
			if left && p.gone(w, r, route, ctx) {
				return
			}
			if ce, ok := errors.AsType[*clientBodyError](berr); ok && !cut {
				err = fmt.Errorf("%w: reading the request body: %w", errBadRequest, ce.err)
			}
			switch {
			case errors.Is(err, errBadRequest):
				route.fail(err)
				w.Header().Set("Connection", "close")
				http.Error(w, "400 bad request: "+err.Error(), http.StatusBadRequest)
				return
			case bc.reused && !hasBody && errors.Is(err, errNoResponse):
				// Issue 12: it goes to another available target, up to Retries (not
				// charged to this one: a backend closing an idle keep-alive is no
				// fault); with none, on a new connection to this one, which cannot be
				// stale: this loops once.
				if retries < pol.Retries {
					if t := route.retry(tried); t != nil {
						tried = append(tried, t)
						retries++
						fresh = false
						continue
					}
				}
				fresh = true
				continue
			}
			if isTimeout(err) {
				route.report(err) // a black-holed target counts toward its ejection
			}
			p.fail(w, route, err)
			return
		}
		route.report(nil)
		route.Header = time.Duration(lazytime.Now() - start)
		reusable, rerr := copyResponse(w, resp, route.vals[:])
		if body != nil {
			reusable = body.finish(w, bc) && reusable
		}
		// One reading for the connection's idle age and the caller's durations.
		route.End = lazytime.Now()
		bc.doneWith(resp)
		// Bytes past the response's end (a backend that sent more than its body) would
		// be read as the next request's answer: such a connection is not kept.
		if stop.StopOnCancel() && reusable && !resp.Close && bc.br.Buffered() == 0 {
			p.pool.put(bc, route.End)
		} else {
			_ = bc.conn.Close()
		}
		if rerr != nil {
			// The response is cut short: end it as broken (no final chunk), as
			// ReverseProxy does, so the client cannot take it for whole.
			route.fail(fmt.Errorf("reading the backend's response body: %w", rerr))
			panic(http.ErrAbortHandler)
		}
		return
	}
}

// Cancelable is a context that runs one function when it ends without
// context.AfterFunc's allocations, and tells its cause itself (the listener's HTTP/1
// requests: context.Cause cannot see into a context type of another package).
type Cancelable interface {
	context.Context
	OnCancel(f func())  // f runs when the context ends, at once if it has; f must not block
	StopOnCancel() bool // withdraws f: false when it ran
	Cause() error
}

// onCancel has bc's reads fail at once when ctx ends (the client went away, the drain
// ran out); its StopOnCancel withdraws that, false when it happened. A Cancelable is
// returned as it is: its method value would be an allocation per request.
func onCancel(ctx context.Context, bc *backendConn) stopper {
	if bc.abortFn == nil {
		c := bc.conn
		bc.abortFn = func() { _ = c.SetReadDeadline(time.Now()) }
	}
	if cc, ok := ctx.(Cancelable); ok {
		cc.OnCancel(bc.abortFn)
		return cc
	}
	return afterStop(context.AfterFunc(ctx, bc.abortFn))
}

// stopper withdraws what onCancel arranged: false when it ran already.
type stopper interface{ StopOnCancel() bool }

// afterStop is context.AfterFunc's stop as a stopper.
type afterStop func() bool

func (f afterStop) StopOnCancel() bool { return f() }

// cause is context.Cause, asking a Cancelable itself.
func cause(ctx context.Context) error {
	if cc, ok := ctx.(Cancelable); ok {
		return cc.Cause()
	}
	return context.Cause(ctx)
}

// idempotent reports whether m is one of RFC 9110's idempotent methods (§9.2.2),
// which a client may send again after a failure. POST and PATCH are not: one of those
// never goes on a connection that was not checked (pool.get), even without a body.
func idempotent(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// errNoResponse: the backend closed or reset the connection before answering.
var errNoResponse = errors.New("backend closed the connection without a response")

// bodyWrite is a request body on its way to the backend, written by its own goroutine.
type bodyWrite struct {
	done chan error  // the outcome, once the goroutine ends
	read atomic.Bool // the client's body was read to its end
}

// finish ends the body's write after the response was copied and reports whether the
// backend connection can be reused. A body read to its end costs the client nothing: a
// write the backend no longer reads is cut short on the backend side. A body still being
// read is stopped (abort), and the client's connection closes after the response.
func (b *bodyWrite) finish(w http.ResponseWriter, bc *backendConn) bool {
	select {
	case err := <-b.done:
		return err == nil
	default:
	}
	if !b.read.Load() { // the backend answered before it had the whole body
		abort(w, bc, b)
		return false
	}
	_ = bc.conn.SetWriteDeadline(time.Now())
	err := <-b.done
	_ = bc.conn.SetWriteDeadline(time.Time{})
	return err == nil
}

// roundTrip writes the request and reads the response header, skipping 1xx responses.
// body, when not nil, is the request body being written.
func roundTrip(ctx context.Context, bc *backendConn, r *http.Request, route *Route, hasBody bool, timeout time.Duration) (resp *http.Response, body *bodyWrite, err error) {
	chunked := hasBody && r.ContentLength < 0
	if err := writeHead(bc.bw, r, route, chunked); err != nil {
		return nil, nil, err
	}
	if hasBody {
		// A variable of its own for the goroutine: capturing the result body would move
		// it to the heap on every call, with a body or without.
		b := &bodyWrite{done: make(chan error, 1)}
		go func() {
			err := writeBody(bc.bw, onlyReader{r.Body, &b.read}, chunked, r.ContentLength)
			if _, ok := errors.AsType[*clientBodyError](err); ok {
				// The client's body is broken: the backend must not wait for the rest.
				_ = bc.conn.Close()
			}
			b.done <- err
		}()
		body = b
	} else {
		bc.holdNext() // sent by readResponse's first read
		if err := bc.bw.Flush(); err != nil {
			return nil, nil, fmt.Errorf("%w: %w", errNoResponse, err)
		}
	}
	bc.readTimeout(ctx, timeout)
	resp, err = readResponse(bc, r, route.Head)
	if err != nil || !bodyBuffered(resp, bc.br) {
		// The body is read for as long as it takes, with no deadline.
		bc.setReadDeadline(ctx, time.Time{})
	}
	return resp, body, err
}

// abort closes a backend connection and, if the request body is still being sent,
// stops reading it from the client (whose connection cannot be reused then) and waits
// for the writer, whose outcome it returns. cut reports that the writer failed on the
// deadline abort set on the client's body read: that error is abort's doing, not the
// client's (a writer that failed on its own, on a malformed chunk say, is not cut).
func abort(w http.ResponseWriter, bc *backendConn, body *bodyWrite) (cut bool, err error) {
	_ = bc.conn.Close()
	if body == nil {
		return false, nil
	}
	select {
	case err := <-body.done:
		if !body.read.Load() {
			// The writer stopped (the backend went away) with the client's body unread:
			// the rest is not waited for (the client's connection closes after the answer).
			_ = http.NewResponseController(w).SetReadDeadline(time.Now())
		}
		return false, err
	default:
		_ = http.NewResponseController(w).SetReadDeadline(time.Now())
		err := <-body.done
		return errors.Is(err, os.ErrDeadlineExceeded), err
	}
}

// fail answers for a backend that could not be reached or did not answer: 504 when it
// timed out, else 502.
func (p *Proxy) fail(w http.ResponseWriter, route *Route, err error) {
	route.fail(err)
	if isTimeout(err) {
		http.Error(w, "504 gateway timeout: the backend did not answer in time", http.StatusGatewayTimeout)
		return
	}
	http.Error(w, "502 bad gateway: the backend could not be reached", http.StatusBadGateway)
}

func isTimeout(err error) bool {
	ne, ok := errors.AsType[net.Error](err)
	return ok && ne.Timeout()
}

// ErrClientClosed is the cause of a request context that ended because the client
// went away (an HTTP/2 stream reset, an HTTP/1 connection closed): the backend exchange
// is abandoned and the request logged as StatusClientClosed.
var ErrClientClosed = errors.New("client closed request")

// StatusClientClosed is nginx's 499, the status logged (never sent) for a request whose
// client left before the answer: counted apart from 502 and 504, which are the
// backend's failures.
const StatusClientClosed = 499

// gone reports whether the exchange's context ended; then the request is answered as
// abandoned: 499 when the client left, 503 when a drain ran out.
func (p *Proxy) gone(w http.ResponseWriter, r *http.Request, route *Route, ctx context.Context) bool {
	if ctx.Err() == nil {
		return false
	}
	if r.ProtoMajor == 1 {
		// Not on HTTP/2: there net/http takes it for a wish to close the whole
		// connection (GOAWAY), where one stream ended.
		w.Header().Set("Connection", "close")
	}
	if errors.Is(cause(ctx), ErrClientClosed) {
		route.fail(ErrClientClosed)
		w.WriteHeader(StatusClientClosed)
		return true
	}
	route.fail(fmt.Errorf("request abandoned: %w", cause(ctx)))
	http.Error(w, "503 service unavailable: shutting down", http.StatusServiceUnavailable)
	return true
}
