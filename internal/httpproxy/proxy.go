// Package httpproxy is the L7 path to backends: it strips every identity header a client
// sent, sets X-Forwarded-* and the identity of the verified client, and sends the
// request to the target chosen per request, over pooled HTTP/1.1 connections in the
// request's own goroutine (httputil.ReverseProxy only for protocol upgrades). It does
// not accept connections or verify certificates: listener hands it a Route per request.
package httpproxy

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"tlsgate/internal/backend"
	"tlsgate/internal/clientauth"
	"tlsgate/internal/config"
	"tlsgate/internal/h1parse"
)

// Route is what the proxy needs to know about one request.
type Route struct {
	Target string // backend host:port; after Serve, the target that was last tried
	// Group and Picked, when set, are the target group and the target Target was
	// picked from: their policy applies (timeouts, retries to another target, outlier
	// reports), and Key is the client's key for the group's scheduler. Without them
	// Target is tried once under the default policy.
	Group  *backend.Group
	Picked *backend.Target
	Key    string
	// Identity is the connection's identity headers (see Identity), added after the
	// client's are stripped; nil on plain HTTP and with forward_client_cert: none.
	Identity http.Header
	// Client, when set, is the connection's client (NewClient of its RemoteAddr): a
	// request whose RemoteAddr is Client.Addr gets its host in X-Forwarded-For without
	// splitting the address again; any other RemoteAddr is split as without it.
	Client *Client
	// BackendTLS re-encrypts to the backend (the target group's tls settings).
	BackendTLS *tls.Config
	Err        func(err error) // called when the backend cannot be reached
	// Ctx ends the exchange when done (the client went away, drain ran out); nil means
	// the request's context.
	Ctx context.Context
	// Connected and Header are set by Serve for the access log: the time to get the
	// backend connection (dialled or pooled) and until its response header was read, of
	// the attempt that answered. Zero when not reached (and for upgrades).
	Connected, Header time.Duration
	// Start, when set, is the lazytime.Now reading at which the caller handed the
	// request over (its own upstream timer's start): the first attempt's Connected and
	// Header are timed from it and the pool ages its idle connections by it, where each
	// read the clock again. End is set by Serve to the clock's reading once the response
	// was copied to the client (0 when it was not, and for upgrades): the caller's
	// durations that end there take it instead of a reading of their own. Each clock
	// read is a vDSO call, and a kept-alive request read the clock about 20 times.
	Start, End int64
	// Head, when not nil, is storage the caller lends for the bytes of the response's
	// head (h1parse.ReadResponseBlock's store): the response's header names and values
	// in the client's header are then views of it, valid while the caller leaves it
	// alone and clones what it keeps beyond the request. The listener lends its HTTP/1
	// writer's, written again only for the run's next request, after the client's header
	// was emptied. nil: each head is a string of its own.
	Head []byte

	released []func()           // Acquire's releases of the targets retried on
	tried    [2]*backend.Target // forward's targets tried, while they fit
	// vals holds the response's header values in the client's header (copyResponse),
	// for as long as the request: the backend connection's block is reused.
	vals [h1parse.BlockValues]string
}

func (r *Route) ctx(req *http.Request) context.Context {
	if r.Ctx != nil {
		return r.Ctx
	}
	return req.Context()
}

type routeKey struct{}

// withRoute returns ctx carrying r.
func withRoute(ctx context.Context, r *Route) context.Context {
	return context.WithValue(ctx, routeKey{}, r)
}

func routeOf(ctx context.Context) *Route {
	r, _ := ctx.Value(routeKey{}).(*Route)
	return r
}

// Proxy forwards requests to backends.
type Proxy struct {
	pool *pool
	// upgrades relays WebSocket and other Upgrade requests, which need the client
	// connection hijacked and copied both ways.
	upgrades *httputil.ReverseProxy
}

// New returns a proxy that dials backends with dial (nil: a net.Dialer, 10 s timeout).
func New(dial DialFunc) *Proxy {
	p := &Proxy{pool: newPool(dial)}
	// Upgrades dial within their group's connect_timeout too (the transport passes the
	// request's context, which carries the route).
	d := func(ctx context.Context, network, addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, routeOf(ctx).policy().ConnectTimeout)
		defer cancel()
		return p.pool.dial(ctx, network, addr)
	}
	p.upgrades = &httputil.ReverseProxy{
		Transport: &transports{plain: newTransport(nil, d)},
		Rewrite:   rewrite,
		ErrorHandler: func(w http.ResponseWriter, req *http.Request, err error) {
			p.fail(w, routeOf(req.Context()), err)
		},
		BufferPool: bufferPool{},
	}
	return p
}

// Close closes idle backend connections.
func (p *Proxy) Close() { p.pool.close() }

// Serve proxies r to route's target and writes the answer to w. An upgrade to h2c is
// not passed on: a backend that switched would give the client a channel our per-request
// checks (Host, rules, allow-lists) never see (h2c smuggling).
func (p *Proxy) Serve(w http.ResponseWriter, r *http.Request, route *Route) {
	if up := First(r.Header, "Upgrade"); up != "" && Listed(r.Header["Connection"], "upgrade") {
		if !strings.EqualFold(strings.TrimSpace(up), "h2c") {
			p.upgrades.ServeHTTP(w, r.WithContext(withRoute(route.ctx(r), route)))
			return
		}
	}
	defer route.done()
	p.forward(w, r, route)
}

var buffers = sync.Pool{New: func() any { return new([32 << 10]byte) }}

// bufferPool recycles ReverseProxy's copy buffers.
type bufferPool struct{}

func (bufferPool) Get() []byte  { return buffers.Get().(*[32 << 10]byte)[:] }
func (bufferPool) Put(b []byte) { buffers.Put((*[32 << 10]byte)(b)) }

func newTransport(tc *tls.Config, dial DialFunc) *http.Transport {
	return &http.Transport{
		DialContext:           dial,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   config.DefaultMaxIdlePerTarget,
		IdleConnTimeout:       config.DefaultPoolIdleTimeout,
		ResponseHeaderTimeout: 60 * time.Second,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig:       tc,
	}
}

// transports keeps one pooled transport per backend TLS config (a target group's), so
// connections to backends are reused across requests.
type transports struct {
	plain *http.Transport
	tls   sync.Map // *tls.Config → *http.Transport
}

func (t *transports) RoundTrip(req *http.Request) (*http.Response, error) {
	r := routeOf(req.Context())
	if r == nil || r.BackendTLS == nil {
		return t.plain.RoundTrip(req)
	}
	tr, ok := t.tls.Load(r.BackendTLS)
	if !ok {
		tr, _ = t.tls.LoadOrStore(r.BackendTLS, newTransport(r.BackendTLS, t.plain.DialContext))
	}
	return tr.(*http.Transport).RoundTrip(req)
}

func rewrite(pr *httputil.ProxyRequest) {
	r := routeOf(pr.In.Context())
	// Identity headers from the client are removed before anything is added, whatever
	// the dialect and whether or not the client authenticated (S3). ReverseProxy has
	// already removed hop-by-hop headers, including those named in Connection:, so a
	// client cannot use Connection: to drop a header we set below (CVE-2024-45410).
	StripIdentity(pr.Out.Header)
	for k := range pr.Out.Header {
		if IsForwardedHeader(k) { // X-Forwarded-Port, X_Real_IP, ...: the hop is ours
			delete(pr.Out.Header, k)
		}
	}
	scheme := "http"
	if r.BackendTLS != nil {
		scheme = "https"
	}
	pr.SetURL(&url.URL{Scheme: scheme, Host: r.Target})
	pr.Out.Host = pr.In.Host
	pr.SetXForwarded()
	for k, vs := range r.Identity {
		// Shared by the connection's requests: clipped, so an append copies.
		pr.Out.Header[k] = slices.Clip(vs)
	}
}

// Identity builds the identity headers of a connection in a dialect, once per
// connection: the certificate's PEM, escaping and fingerprint cost about 10 µs, too much
// to spend on every request of a kept-alive connection.
func Identity(dialect config.Forward, v clientauth.Verdict, cs *tls.ConnectionState) http.Header {
	if cs == nil {
		return nil
	}
	h := http.Header{}
	switch dialect {
	case config.ForwardHeaders:
		SetIdentity(h, v, cs)
	case config.ForwardXFCC:
		SetXFCC(h, v)
	case config.ForwardRFC9440:
		SetRFC9440(h, v)
	default:
		return nil
	}
	return h
}

// defaultPolicy is the policy of a route without a group: the documented defaults.
var defaultPolicy = backend.PolicyOf(&config.TargetGroup{})

func (r *Route) policy() backend.Policy {
	if r == nil || r.Group == nil {
		return defaultPolicy
	}
	return r.Group.Policy
}

// report tells the group how its target fared (see backend.Group.Report).
func (r *Route) report(err error) {
	if r.Group != nil && r.Picked != nil {
		r.Group.Report(r.Picked, err)
	}
}

// retry moves the route to another target of its group than those tried, counting
// the work on it, and returns it; nil when there is none.
func (r *Route) retry(tried []*backend.Target) *backend.Target {
	if r.Group == nil || r.Picked == nil {
		return nil
	}
	t := r.Group.Retry(r.Key, tried)
	if t == nil {
		return nil
	}
	r.Picked, r.Target = t, t.Address
	r.released = append(r.released, t.Acquire())
	return t
}

// done releases the work counted on the targets retries moved to.
func (r *Route) done() {
	for _, release := range r.released {
		release()
	}
	r.released = nil
}

func (r *Route) fail(err error) {
	if r != nil && r.Err != nil {
		r.Err(err)
	}
}
