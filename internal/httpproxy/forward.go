package httpproxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"tlsgate/internal/h1parse"
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
// that fails goes to another target, up to Retries times; a reused connection that
// fails before any byte of the response, when the request has no body, is replaced by a
// new one to the same target (the backend may have closed it while idle: no fault of
// the target). A request whose body was sent is never sent again. Connect failures and
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
	for retries := 0; ; {
		key := poolKey{addr: route.Target, tls: route.BackendTLS}
		start := lazytime.Now() // for durations only: the monotonic clock alone
		bc, err := p.pool.get(ctx, key, lim, pol.ConnectTimeout, fresh, retryable)
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
				fresh = true // a new connection cannot be stale: this loops once
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
		reusable, rerr := copyResponse(w, resp)
		if body != nil {
			reusable = body.finish(w, bc) && reusable
		}
		bc.doneWith(resp)
		// Bytes past the response's end (a backend that sent more than its body) would
		// be read as the next request's answer: such a connection is not kept.
		if stop.StopOnCancel() && reusable && !resp.Close && bc.br.Buffered() == 0 {
			p.pool.put(bc)
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
	resp, err = readResponse(bc, r)
	if err != nil || !bodyBuffered(resp, bc.br) {
		// The body is read for as long as it takes, with no deadline.
		bc.setReadDeadline(ctx, time.Time{})
	}
	return resp, body, err
}

// readResponse reads the response header to r, skipping 1xx responses.
func readResponse(bc *backendConn, r *http.Request) (*http.Response, error) {
	if _, err := bc.br.Peek(1); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
			err = fmt.Errorf("%w: %w", errNoResponse, err)
		}
		return nil, err
	}
	for {
		// net/http's unless common and buffered; the fast path fills the connection's map
		resp, err := h1parse.ReadResponseInto(bc.br, r, bc.header())
		if err != nil {
			return nil, fmt.Errorf("reading the backend's response: %w", err)
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			return nil, errors.New("backend switched protocols on a request that asked for no upgrade")
		}
		if resp.StatusCode >= 200 {
			return resp, nil
		}
	}
}

// setReadDeadline sets the connection's read deadline to t, or to now when ctx has
// ended: the AfterFunc that cuts the exchange short when the client leaves may have run
// before, and its deadline must not be overwritten (the exchange would wait for the
// backend).
func (bc *backendConn) setReadDeadline(ctx context.Context, t time.Time) {
	bc.rdl = lazytime.Of(t)
	_ = bc.conn.SetReadDeadline(t)
	if ctx.Err() != nil {
		now := time.Now()
		bc.rdl = lazytime.Of(now)
		_ = bc.conn.SetReadDeadline(now)
	}
}

// readTimeout sets the response timeout, lazily as the listener sets a client's
// deadlines: a deadline still armed from the connection's last response that falls at
// most the slack before the new one stands (lazytime.Keeps), so the response timeout
// may fire that much early. A response whose body came with its header keeps its
// deadline (bodyBuffered), and the next request on the connection, soon after, sets
// none.
func (bc *backendConn) readTimeout(ctx context.Context, d time.Duration) {
	if !lazytime.Keeps(bc.rdl, lazytime.Now()+int64(d), d) || ctx.Err() != nil {
		bc.setReadDeadline(ctx, time.Now().Add(d))
	}
}

// bodyBuffered reports whether resp's whole body is in br already: reading it waits
// for nothing, so the response timeout may stay armed.
func bodyBuffered(resp *http.Response, br *bufio.Reader) bool {
	return resp != nil && resp.ContentLength >= 0 && len(resp.TransferEncoding) == 0 &&
		int64(br.Buffered()) >= resp.ContentLength
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
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

// isHop reports the headers removed in both directions (RFC 9110 §7.6.1), with the
// framing headers, which are written anew for the next hop, and the X-Forwarded set,
// which only we set (not removed from responses). A switch rather than a map: it runs
// for every header of every request and response.
func isHop(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding",
		"Upgrade", "Content-Length", "Expect":
		return true
	}
	return false
}

func isForwarded(k string) bool {
	switch k {
	case "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto":
		return true
	}
	return false
}

// Listed reports whether name is one of the tokens of the Connection headers.
func Listed(connection []string, name string) bool {
	for _, v := range connection {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), name) {
				return true
			}
		}
	}
	return false
}

// writeHead writes the request line and header for the backend: the client's header
// without hop-by-hop, X-Forwarded and identity headers, then ours, then the framing.
func writeHead(bw *bufio.Writer, r *http.Request, route *Route, chunked bool) error {
	uri := r.RequestURI
	if uri == "" || (uri[0] != '/' && uri != "*") {
		uri = r.URL.RequestURI() // absolute-form: the backend gets origin-form
	}
	if !ValidToken(r.Method) || !validTarget(uri) || !ValidValue(r.Host) {
		return fmt.Errorf("%w: invalid method, target or host", errBadRequest)
	}
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString(uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(r.Host)
	bw.WriteString("\r\n")
	conn := r.Header["Connection"]
	for k, vs := range r.Header {
		if isHop(k) || isForwarded(k) || IsIdentityHeader(k) || (len(conn) > 0 && Listed(conn, k)) {
			continue
		}
		if !ValidToken(k) {
			return fmt.Errorf("%w: invalid header name %q", errBadRequest, k)
		}
		for _, v := range vs {
			if !ValidValue(v) {
				return fmt.Errorf("%w: invalid value in header %s", errBadRequest, k)
			}
			WriteField(bw, k, v)
		}
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		WriteField(bw, "X-Forwarded-For", host)
	}
	WriteField(bw, "X-Forwarded-Host", r.Host)
	if r.TLS != nil {
		WriteField(bw, "X-Forwarded-Proto", "https")
	} else {
		WriteField(bw, "X-Forwarded-Proto", "http")
	}
	for k, vs := range route.Identity {
		for _, v := range vs {
			WriteField(bw, k, v)
		}
	}
	switch {
	case chunked:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	case r.ContentLength > 0:
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.FormatInt(r.ContentLength, 10))
		bw.WriteString("\r\n")
	case r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch:
		bw.WriteString("Content-Length: 0\r\n")
	}
	_, err := bw.WriteString("\r\n")
	return err
}

// WriteField writes one header line "k: v", in one copy when it fits the buffer.
func WriteField(bw *bufio.Writer, k, v string) {
	if n := len(k) + len(v) + 4; n <= bw.Available() {
		b := bw.AvailableBuffer()
		b = append(b, k...)
		b = append(b, ':', ' ')
		b = append(b, v...)
		b = append(b, '\r', '\n')
		_, _ = bw.Write(b)
		return
	}
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(v)
	bw.WriteString("\r\n")
}

// First is h's first value of the canonical key k: Header.Get without
// canonicalizing k again (a parsed header's keys are canonical already).
func First(h http.Header, k string) string {
	if vs := h[k]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// writeBody copies the request body (an onlyReader), chunked when its length is unknown,
// and flushes. What the client has sent goes on at once, as HAProxy and Envoy stream a
// body: each piece read is flushed unless it completes a body of known length (whose
// last piece the final flush sends, with the head when the body is small), so a client
// that streams a body slowly is not held back until 4 KiB have gathered.
func writeBody(bw *bufio.Writer, body io.Reader, chunked bool, length int64) error {
	buf := buffers.Get().(*[32 << 10]byte)
	defer buffers.Put(buf)
	var err error
	if chunked {
		cw := httputil.NewChunkedWriter(bw)
		if _, err = io.CopyBuffer(&flushing{w: cw, bw: bw, left: -1}, body, buf[:]); err == nil {
			err = cw.Close()
		}
		if err == nil {
			_, err = bw.WriteString("\r\n") // no trailers
		}
	} else {
		_, err = io.CopyBuffer(&flushing{w: bw, bw: bw, left: length}, body, buf[:])
	}
	if err == nil {
		err = bw.Flush()
	}
	return err
}

// flushing writes to w (bw, or a chunked writer over it) and flushes bw after each
// write, except the one that completes a body of known length (left < 0: unknown).
type flushing struct {
	w    io.Writer
	bw   *bufio.Writer
	left int64
}

func (f *flushing) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err != nil {
		return n, err
	}
	if f.left >= 0 {
		if f.left -= int64(n); f.left <= 0 {
			return n, nil
		}
	}
	return n, f.bw.Flush()
}

// onlyReader hides WriteTo, so io.CopyBuffer uses the pooled buffer, tells the client's
// read errors from the backend's write errors, and records the body's end in read.
type onlyReader struct {
	r    io.Reader
	read *atomic.Bool
}

func (o onlyReader) Read(p []byte) (int, error) {
	n, err := o.r.Read(p)
	switch {
	case err == io.EOF:
		o.read.Store(true)
	case err != nil:
		err = &clientBodyError{err}
	}
	return n, err
}

// clientBodyError is a failure to read the request body from the client (a bad chunk,
// a connection closed early).
type clientBodyError struct{ err error }

func (e *clientBodyError) Error() string { return e.err.Error() }
func (e *clientBodyError) Unwrap() error { return e.err }

// copyResponse writes the backend's response to w; it reports whether the response was
// read to its end (so the backend connection can be reused) and the backend's error if
// its body broke off.
func copyResponse(w http.ResponseWriter, resp *http.Response) (bool, error) {
	h := w.Header()
	conn := resp.Header["Connection"]
	for k, vs := range resp.Header {
		if k != "Content-Length" && isHop(k) || (len(conn) > 0 && Listed(conn, k)) {
			continue
		}
		h[k] = vs
	}
	if len(resp.Trailer) > 0 {
		for k := range resp.Trailer {
			h.Add("Trailer", k)
		}
	}
	w.WriteHeader(resp.StatusCode)
	buf := buffers.Get().(*[32 << 10]byte)
	defer buffers.Put(buf)
	// A body of unknown length may be a stream (server-sent events): pass each read on.
	flush := resp.ContentLength < 0
	for {
		n, err := resp.Body.Read(buf[:])
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return false, nil // the client went away
			}
			if flush {
				_ = http.NewResponseController(w).Flush()
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return false, err
		}
	}
	for k, vs := range resp.Trailer {
		h[http.TrailerPrefix+k] = vs
	}
	return true, nil
}

// validTarget reports whether s can be a request target: no spaces or control bytes.
func validTarget(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}
