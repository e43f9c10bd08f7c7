// Package h2proxy forwards requests to target groups whose protocol is h2c or h2: HTTP/2
// to the backend over one multiplexed connection pool per target, streaming both
// bodies frame by frame and passing trailers, which is what gRPC needs (unary and
// streaming calls, grpc-status in trailers, grpc-timeout, cancellation both ways). The
// client's identity headers are stripped and the verified identity added by
// httpproxy's functions, exactly as for HTTP/1.1 backends. It does not pick targets or
// check clients: listener hands it a Route per request, as to httpproxy.
package h2proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"tlsgate/internal/httpproxy"
)

// Route is what the proxy needs to know about one request.
type Route struct {
	Target string // backend host:port
	// TLS is the target's TLS config (server name set) for h2; nil for h2c.
	TLS *tls.Config
	// Identity is the connection's identity headers, added after the client's are
	// stripped; nil on plain HTTP and with forward_client_cert: none.
	Identity http.Header
	// Err is called with the reason a request got no (complete) answer.
	Err func(err error)
	// Ctx ends the exchange when done; nil means the request's context.
	Ctx context.Context
	// ConnectTimeout bounds connecting to Target plus the TLS handshake: the target
	// group's connect_timeout (0: 10 s).
	ConnectTimeout time.Duration
	// IdleTimeout closes a backend connection that carried no stream for this long,
	// and MaxIdle is how many such connections are kept per target (0: a connection
	// closes when its last stream ends): the group's idle_timeout and
	// max_idle_per_target. IdleTimeout 0: 90 s and no cap.
	IdleTimeout time.Duration
	MaxIdle     int
	// ResponseTimeout bounds the wait for the response header of a request that is not
	// gRPC, once it was sent: the group's response_timeout (0: none). gRPC calls are
	// bounded by their grpc-timeout only: a stream's first message, which carries its
	// header, may rightly come much later.
	ResponseTimeout time.Duration
	// Next, when set, is asked for another target after no connection to Target could
	// be had (nothing of the request was sent): the group's retries (issue 12: a refused
	// connect never loses a request). ok is false when there is none; err is the
	// failure on the target given up.
	Next func(err error) (target string, tc *tls.Config, ok bool)
	// Connected and Header are set by Serve for the access log: the time to get a
	// stream on a backend connection (pooled or dialled) and until the response header
	// arrived, of the attempt that answered. Zero when not reached.
	Connected, Header time.Duration
}

// key is the pool key of a target of the route's group.
func (rt *Route) key(addr string, tc *tls.Config) key {
	k := key{addr: addr, tls: tc, connect: rt.ConnectTimeout, idle: rt.IdleTimeout}
	if k.idle > 0 {
		k.maxIdle = max(rt.MaxIdle, 0)
	}
	return k
}

func (rt *Route) fail(err error) {
	if rt.Err != nil {
		rt.Err(err)
	}
}

// Proxy forwards requests over HTTP/2.
type Proxy struct {
	pools pools
	// testHookConn, when set, sees the connection each attempt got (tests break it).
	testHookConn func(*http.ClientConn)
}

// New returns a proxy that dials backends with dial (nil: a net.Dialer).
func New(dial DialFunc) *Proxy {
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	return &Proxy{pools: pools{dial: dial, m: map[key]*pool{}}}
}

// Close closes every backend connection.
func (p *Proxy) Close() { p.pools.close() }

// errDeadline is the cause of a context ended by the call's grpc-timeout.
var errDeadline = errors.New("the call's grpc-timeout passed")

// maxAttempts bounds how often a request nothing of which was sent is moved to another
// connection (the one it was given broke or got GOAWAY before it wrote the request).
const maxAttempts = 3

// Serve forwards r to route's target and writes the answer to w. It returns the gRPC
// status the client got ("" when r is not gRPC or no status was sent).
func (p *Proxy) Serve(w http.ResponseWriter, r *http.Request, route *Route) string {
	ctx := route.Ctx
	if ctx == nil {
		ctx = r.Context()
	}
	grpc := IsGRPC(r)
	if grpc {
		var cancel context.CancelFunc
		ctx, cancel = withGRPCDeadline(ctx, r)
		defer cancel()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // before waiting for the body: a stream still sending it is reset
	pl := p.pools.get(route.key(route.Target, route.TLS))
	out := outgoing(r, route)
	var resp *http.Response
	var body *bodyReader
	defer func() {
		cancel()
		if body != nil {
			body.wait()
		}
	}()
	for attempt := 1; ; attempt++ {
		start := time.Now()
		cc, err := pl.get(ctx)
		route.Connected = time.Since(start)
		if err != nil {
			err = fmt.Errorf("connecting to %s: %w", route.Target, err)
			if route.Next != nil && ctx.Err() == nil && !errors.Is(err, errClosed) {
				if addr, tc, ok := route.Next(err); ok {
					route.Target, route.TLS = addr, tc
					pl = p.pools.get(route.key(addr, tc))
					attempt-- // a move to another target is not an attempt on a connection
					continue
				}
			}
			return p.fail(w, r, route, ctx, "the backend could not be reached", err)
		}
		if p.testHookConn != nil {
			p.testHookConn(cc)
		}
		var wrote atomic.Bool
		body = newBodyReader(r)
		out.Body = body.body()
		trace := &httptrace.ClientTrace{WroteHeaders: func() { wrote.Store(true) }}
		rctx, timer := ctx, (*time.Timer)(nil)
		if route.ResponseTimeout > 0 && !grpc {
			c, cancelT := context.WithCancelCause(ctx)
			defer cancelT(nil)
			timer = time.AfterFunc(route.ResponseTimeout, func() { cancelT(responseTimeout(route.ResponseTimeout)) })
			rctx = c
		}
		resp, err = cc.RoundTrip(out.WithContext(httptrace.WithClientTrace(rctx, trace)))
		if timer != nil && !timer.Stop() && ctx.Err() == nil {
			// No header within response_timeout: 504, not sent again (it may have been
			// processed), and counted toward the target's ejection.
			if err == nil {
				_ = resp.Body.Close()
				resp = nil
			}
			if !body.started() {
				_ = body.Close()
			}
			return p.fail(w, r, route, ctx, "the backend did not answer in time",
				fmt.Errorf("backend %s: %w", route.Target, responseTimeout(route.ResponseTimeout)))
		}
		if err == nil {
			route.Header = time.Since(start)
			break
		}
		// ClientConn.RoundTrip may return without closing a body it never read; a body
		// it read it closes (perhaps later, see bodyReader.wait).
		sent := body.started()
		if !sent {
			_ = body.Close()
		}
		// Nothing of the request reached the backend, or the backend says it did not
		// process it: it may go on another connection.
		if !sent && (!wrote.Load() || refused(err)) && ctx.Err() == nil && attempt < maxAttempts {
			body = nil
			continue
		}
		return p.fail(w, r, route, ctx, "the backend did not answer the call", fmt.Errorf("backend %s: %w", route.Target, err))
	}
	defer resp.Body.Close()
	return copyResponse(w, r, resp, route, ctx, grpc)
}

// responseTimeout is the error of a request whose response header did not come within
// the group's response_timeout; a timeout (net.Error) as a black-holed target's is.
type responseTimeout time.Duration

func (d responseTimeout) Error() string {
	return fmt.Sprintf("no response header within response_timeout (%v)", time.Duration(d))
}
func (responseTimeout) Timeout() bool   { return true }
func (responseTimeout) Temporary() bool { return false }

// ResponseTimedOut reports whether err ended a request at the group's response_timeout
// (a target's failure), as opposed to a client's grpc-timeout (the client's choice).
func ResponseTimedOut(err error) bool {
	_, ok := errors.AsType[responseTimeout](err)
	return ok
}

// refused reports an error by which the backend said it did not process the stream:
// RST_STREAM with REFUSED_STREAM (RFC 9113 §8.7), or a graceful GOAWAY whose last stream
// id is below it (§6.8). net/http retries these itself only in its own pool, and its
// errors are unexported types, so they are known by their text (TestRefusedStreamRetried
// fails if a Go release changes it).
func refused(err error) bool {
	s := err.Error()
	return strings.Contains(s, "; REFUSED_STREAM") || strings.Contains(s, "graceful shutdown GOAWAY")
}

// outgoing is the request for the backend: the client's header without hop-by-hop,
// X-Forwarded and identity fields, then ours. r's header map is reused rather than
// copied (a copy cost about a tenth of a unary call): the handler owns it, and nothing
// reads the removed fields afterwards.
func outgoing(r *http.Request, route *Route) *http.Request {
	scheme := "http"
	if route.TLS != nil {
		scheme = "https"
	}
	h := r.Header
	if h == nil {
		h = http.Header{}
	}
	conn := h["Connection"]
	trailers := httpproxy.Listed(h["Te"], "trailers")
	for k := range h {
		if hopHeaders[k] || httpproxy.IsForwardedHeader(k) || httpproxy.IsIdentityHeader(k) || (len(conn) > 0 && httpproxy.Listed(conn, k)) {
			delete(h, k)
		}
	}
	// gRPC servers require "te: trailers" (the only TE HTTP/2 allows).
	if trailers {
		h["Te"] = []string{"trailers"}
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		h["X-Forwarded-For"] = []string{host}
	}
	h["X-Forwarded-Host"] = []string{r.Host}
	if r.TLS != nil {
		h["X-Forwarded-Proto"] = []string{"https"}
	} else {
		h["X-Forwarded-Proto"] = []string{"http"}
	}
	for k, vs := range route.Identity {
		h[k] = slices.Clip(vs) // shared by the connection's requests: an append copies
	}
	return &http.Request{
		Method:        r.Method,
		URL:           &url.URL{Scheme: scheme, Host: route.Target, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery},
		Proto:         "HTTP/2.0",
		ProtoMajor:    2,
		Header:        h,
		Trailer:       r.Trailer,
		ContentLength: r.ContentLength,
		Host:          r.Host,
	}
}

// hopHeaders are not forwarded in either direction (RFC 9113 §8.2.2 forbids them in
// HTTP/2; TE is added back as "trailers" when the client asked for it).
var hopHeaders = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true,
	"Upgrade": true, "Expect": true,
}

// fail answers a request that got no response: for gRPC a trailers-only status
// (UNAVAILABLE, or DEADLINE_EXCEEDED when its grpc-timeout passed), else 502 or 504.
func (p *Proxy) fail(w http.ResponseWriter, r *http.Request, route *Route, ctx context.Context, what string, err error) string {
	if clientLeft(r, route) {
		// Not the backend's failure: logged 499 (gRPC: CANCELLED), as for HTTP/1.1
		// groups, and not counted against the target (issue 12 item 5).
		route.fail(httpproxy.ErrClientClosed)
		if !IsGRPC(r) {
			w.WriteHeader(httpproxy.StatusClientClosed)
			return ""
		}
		WriteStatus(w, GRPCCanceled, "tlsgate: the call was cancelled")
		return fmt.Sprint(int(GRPCCanceled))
	}
	if route.Ctx != nil && route.Ctx.Err() != nil {
		// Ended by us, not the client or the backend: the drain deadline passed. 503, as
		// httpproxy answers for HTTP/1.1 groups; not the target's failure.
		route.fail(fmt.Errorf("request abandoned: %w", cause(route.Ctx)))
		if !IsGRPC(r) {
			if r.ProtoMajor == 1 {
				w.Header().Set("Connection", "close")
			}
			http.Error(w, "503 service unavailable: shutting down", http.StatusServiceUnavailable)
			return ""
		}
		WriteStatus(w, GRPCUnavailable, "tlsgate: shutting down")
		return fmt.Sprint(int(GRPCUnavailable))
	}
	route.fail(err)
	if !IsGRPC(r) {
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			http.Error(w, "504 gateway timeout: the backend did not answer in time", http.StatusGatewayTimeout)
			return ""
		}
		http.Error(w, "502 bad gateway: the backend could not be reached", http.StatusBadGateway)
		return ""
	}
	code, msg := statusFor(ctx, what)
	WriteStatus(w, code, msg)
	return fmt.Sprint(int(code))
}

// clientLeft reports whether the exchange ended because the client went away (its
// HTTP/2 stream reset, its HTTP/1 connection closed): route.Ctx ended with
// httpproxy.ErrClientClosed, or without route.Ctx the request's context ended.
func clientLeft(r *http.Request, route *Route) bool {
	if route.Ctx == nil {
		return r.Context().Err() != nil
	}
	if route.Ctx.Err() == nil {
		return false
	}
	return errors.Is(cause(route.Ctx), httpproxy.ErrClientClosed)
}

// cause is context.Cause, asking an httpproxy.Cancelable itself (the listener's HTTP/1
// requests: context.Cause cannot see into it).
func cause(ctx context.Context) error {
	if c, ok := ctx.(httpproxy.Cancelable); ok {
		return c.Cause()
	}
	return context.Cause(ctx)
}

// statusFor is the status of a call the gateway ends: its deadline passed, the client
// cancelled it, or else the backend failed (what). A backend's own deadline resets the
// stream (grpc-go sends RST_STREAM CANCEL), which may arrive as ours passes.
func statusFor(ctx context.Context, what string) (GRPCCode, string) {
	deadline, ok := ctx.Deadline()
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errDeadline), ok && !time.Now().Before(deadline):
		return GRPCDeadlineExceeded, "tlsgate: the deadline passed before the backend answered"
	case cause != nil:
		return GRPCCanceled, "tlsgate: the call was cancelled"
	}
	return GRPCUnavailable, "tlsgate: " + what
}

// copyResponse writes the backend's response to w as it arrives: each read is flushed,
// so a stream's messages are not held back, and flow control stays end to end (the
// backend is read only as fast as the client takes it). Trailers follow the body.
func copyResponse(w http.ResponseWriter, r *http.Request, resp *http.Response, route *Route, ctx context.Context, grpc bool) string {
	h := w.Header()
	conn := resp.Header["Connection"]
	for k, vs := range resp.Header {
		if hopHeaders[k] || (len(conn) > 0 && httpproxy.Listed(conn, k)) {
			continue
		}
		h[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	// A response that ended with its header (gRPC's trailers-only errors) must leave in
	// one HEADERS frame: flushing here would split the status off into a frame the
	// client reads as initial metadata.
	if resp.ContentLength != 0 {
		_ = rc.Flush()
	}
	if err := copyBody(w, rc, resp.Body); err != nil {
		if r.Context().Err() != nil {
			return "" // the client went away
		}
		route.fail(fmt.Errorf("backend %s: the response broke off: %w", route.Target, err))
		if !grpc {
			// Cut short: end it as broken, so the client cannot take it for whole.
			panic(http.ErrAbortHandler)
		}
		code, msg := statusFor(ctx, "the backend's stream broke off")
		setTrailerStatus(w, code, msg)
		return fmt.Sprint(int(code))
	}
	for k, vs := range resp.Trailer {
		h[http.TrailerPrefix+k] = vs
	}
	if !grpc {
		return ""
	}
	return StatusOf(h)
}

var buffers = sync.Pool{New: func() any { return new([32 << 10]byte) }}

// copyBody copies a response body, flushing after every read.
func copyBody(w io.Writer, rc *http.ResponseController, body io.Reader) error {
	buf := buffers.Get().(*[32 << 10]byte)
	defer buffers.Put(buf)
	for {
		n, err := body.Read(buf[:])
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil // the client went away; the caller sees it on r's context
			}
			_ = rc.Flush()
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
