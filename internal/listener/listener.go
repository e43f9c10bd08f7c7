// Package listener runs the accept loop of one listener (tcp, tcp_ssl, http, https):
// the TLS handshake under a deadline, the client-authentication verdict, one log line and
// metric per handshake failure, connection or request, and graceful drain. Its socket
// outlives reloads: the server swaps the listener's State and new connections use it.
// It does not build TLS configs (tlsconf) or pick targets (backend).
package listener

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pires/go-proxyproto"

	"tlsgate/internal/clientauth"
	"tlsgate/internal/config"
	"tlsgate/internal/h2proxy"
	"tlsgate/internal/httpproxy"
	"tlsgate/internal/metrics"
	"tlsgate/internal/tcpproxy"
)

// Deps are the edges a listener is given.
type Deps struct {
	Log     *slog.Logger
	Metrics *metrics.Metrics
	// Dial connects to backends; nil means a net.Dialer (the target group's
	// connect_timeout bounds every dial).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Now is the clock used to classify certificate failures; nil means time.Now.
	Now func() time.Time
	// Observer, when set, is told of every TLS handshake (observer.go).
	Observer Observer
	// HeaderBudget is shared by every listener of the process; nil: no budget.
	HeaderBudget *HeaderBudget
	// Lingerers bounds the lingering closes of every listener of the process
	// (linger.go); nil: none linger, connections are closed at once.
	Lingerers *Lingerers
}

// Listener serves one socket.
type Listener struct {
	ln    net.Listener
	state atomic.Pointer[State]
	deps  Deps

	proxy *httpproxy.Proxy // set on HTTP and HTTPS listeners
	h2up  *h2proxy.Proxy   // for target groups of protocol h2c and h2, with proxy
	infos sync.Map         // net.Conn → *connInfo, from handle to the http.Server's ConnContext
	// verified holds the open connections of verified clients (net.Conn → *connInfo),
	// which a reload checks again (revalidate.go).
	verified sync.Map

	// HTTP/2 connections are served by net/http, which fixes the idle timeout and the
	// header limit per http.Server: one server per pair of them a reload has set, made
	// when a connection first needs it, so a reload changes them without a new socket.
	h2mu     sync.Mutex
	h2       map[h2key]*h2server
	h2closed bool // Shutdown began: no new servers

	h1mu        sync.Mutex
	h1conns     map[*h1conn]struct{} // HTTP/1 connections, for drain
	h1draining  bool
	h1forced    bool          // the drain ran out of time: no request more
	tasks       chan func()   // to idle workers (worker.go)
	stopWorkers chan struct{} // closed at shutdown: idle workers exit
	idleWorkers atomic.Int32
	staying     atomic.Int32 // workers waiting for a next request of their connection (stay.go)
	stopOnce    sync.Once
	sets        metricSets // request metrics by label set (metricset.go)

	// handing counts accepted connections not yet handed to their server (HTTP/1 loop,
	// HTTP/2 server, relay): their handshakes. Shutdown lets them finish before it drains
	// the HTTP servers, so a connection accepted just before is served, not dropped.
	handing  sync.WaitGroup
	serving  atomic.Bool   // Serve began
	loopDone chan struct{} // closed when Serve returns

	ctx    context.Context // cancelled to force-close TCP relays after the drain deadline
	cancel context.CancelFunc
	wg     sync.WaitGroup        // handshakes and TCP relays in flight
	open   atomic.Int64          // connections accepted and not yet closed
	failed atomic.Pointer[error] // the error that ended accepting (accept.go)
	settle *settler              // returns memory after a burst of handshakes (settle.go)
}

type connKey struct{}

// connInfo is what the HTTP layer knows about the connection a request came on.
type connInfo struct {
	state   *State
	domain  *Domain // the policy the handshake ran under
	cs      *tls.ConnectionState
	verdict clientauth.Verdict
	client  string
	fwd     httpproxy.Client // client's host for X-Forwarded-For, split once (httpproxy.Route.Client)
	front   bool             // came from a trusted front (accept_proxy_protocol): its X-Request-Id is kept
	cut     atomic.Value     // clientauth.Reason a reload closed the connection for (revalidate.go)
	// reqs guards the count of requests in flight on an HTTP connection and the reason
	// a reload cut it for: the line of a request in flight then carries the reason, and
	// the connection has no line of its own (revalidate.go).
	reqs struct {
		sync.Mutex
		inflight int
		cut      clientauth.Reason
	}
	line Line // the log fields of the connection: each request's line starts from it
	// identity is the connection's identity headers for backends, built once.
	identity http.Header
}

// newConnInfo is the connInfo of a connection from client (its RemoteAddr) under st:
// its default domain, and the client's host for X-Forwarded-For split once.
func newConnInfo(st *State, client string, front bool) *connInfo {
	return &connInfo{state: st, domain: st.Default, client: client, fwd: httpproxy.NewClient(client), front: front}
}

// New wraps ln; call Serve to start accepting.
func New(ln net.Listener, st *State, deps Deps) *Listener {
	if deps.Dial == nil {
		deps.Dial = (&net.Dialer{}).DialContext // bounded by the group's connect_timeout
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	l := &Listener{deps: deps, sets: metricSets{m: deps.Metrics}}
	// Connections from trusted fronts must begin with a PROXY header, whose source
	// address becomes the client's; anyone else is served as a direct client and a
	// PROXY header from them is not read (it fails the TLS handshake).
	l.ln = &proxyproto.Listener{Listener: ln, ReadHeaderTimeout: 10 * time.Second, ConnPolicy: l.proxyPolicy}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.tasks, l.stopWorkers = make(chan func()), make(chan struct{})
	l.loopDone = make(chan struct{})
	l.settle = newSettler(l.settleMemory)
	l.settle.busy = l.workersBusy
	l.state.Store(st)
	if st.Protocol == config.ProtoHTTP || st.Protocol == config.ProtoHTTPS {
		l.proxy = httpproxy.New(deps.Dial)
		l.h2up = h2proxy.New(deps.Dial)
		l.h1conns = map[*h1conn]struct{}{}
		context.AfterFunc(l.ctx, l.cancelRequests) // once per listener: requests' contexts do not hang off l.ctx
		l.h2 = map[h2key]*h2server{}
	}
	return l
}

// h2server serves the HTTP/2 connections whose state has one idle timeout.
type h2server struct {
	srv   *http.Server
	conns *chanListener
}

// h2For returns the HTTP/2 server for connections under st, starting it if needed; nil
// once Shutdown began.
func (l *Listener) h2For(st *State) *h2server {
	l.h2mu.Lock()
	defer l.h2mu.Unlock()
	if l.h2closed {
		return nil
	}
	key := h2key{st.IdleTimeout, st.HeaderLimits.Bytes}
	if s := l.h2[key]; s != nil {
		return s
	}
	s := &h2server{conns: newChanListener(l.ln.Addr()), srv: &http.Server{
		Handler: l,
		// No ReadHeaderTimeout: for HTTP/2 net/http uses it only to bound the TLS
		// handshake, done before it sees the connection (the handshake_timeout).
		IdleTimeout:    st.IdleTimeout,
		MaxHeaderBytes: st.HeaderLimits.Bytes,
		Protocols:      h2Protocols(),
		ErrorLog:       slog.NewLogLogger(l.deps.Log.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, l.popInfo(c))
		},
		ConnState: func(c net.Conn, s http.ConnState) {
			if s == http.StateClosed || s == http.StateHijacked {
				l.verified.Delete(unguard(c))
				l.closed()
			}
		},
	}}
	l.h2[key] = s
	l.wg.Go(func() { _ = s.srv.Serve(s.conns) })
	return s
}

// shutdownH2 shuts every HTTP/2 server down at once, each within ctx.
func (l *Listener) shutdownH2(ctx context.Context) error {
	l.h2mu.Lock()
	l.h2closed = true
	servers := slices.Collect(maps.Values(l.h2))
	l.h2mu.Unlock()
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Go(func() {
			if errs[i] = s.srv.Shutdown(ctx); errs[i] != nil {
				if ctx.Err() != nil {
					// The drain ran out: its requests end as abandoned (503) before
					// Close ends their contexts as a client's leaving would (499).
					l.cancel()
				}
				_ = s.srv.Close()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (l *Listener) proxyPolicy(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
	trusted := l.state.Load().Trusted
	if len(trusted) == 0 {
		return proxyproto.SKIP, nil
	}
	if ap, err := netip.ParseAddrPort(o.Upstream.String()); err == nil {
		for _, p := range trusted {
			if p.Contains(ap.Addr().Unmap()) {
				return proxyproto.REQUIRE, nil
			}
		}
	}
	return proxyproto.SKIP, nil
}

// ID is the listener's id.
func (l *Listener) ID() string { return l.state.Load().ID }

// Addr is the bound address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Protocol is the listener's protocol; it cannot change across reloads.
func (l *Listener) Protocol() config.Protocol { return l.state.Load().Protocol }

// Swap installs a new state for new connections. Open TCP relays keep theirs; HTTP
// connections are served under theirs but closed after the current request.
func (l *Listener) Swap(st *State) {
	if old := l.state.Swap(st); old != nil && old != st {
		old.retired.Store(true)
		l.revalidate(st)
	}
}

// closed counts a connection as ended.
func (l *Listener) closed() {
	l.open.Add(-1)
	l.deps.Metrics.ConnectionsOpen.WithLabelValues(l.ID()).Dec()
}

// refuse closes a connection over the listener's max_connections at once, with a log
// line, rather than queueing it: the operator sees the limit being hit.
func (l *Listener) refuse(c net.Conn, limit int) {
	line := Line{Msg: "connection", Listener: l.ID(), Client: c.RemoteAddr().String(),
		Err: fmt.Errorf("refused: max_connections (%d) reached", limit)}
	_ = c.Close()
	l.log(context.Background(), &line)
	l.deps.Metrics.Refused.WithLabelValues(line.Listener).Inc()
}

// Shutdown stops accepting, lets in-flight requests and relays finish until ctx ends,
// then closes what is left.
func (l *Listener) Shutdown(ctx context.Context) error {
	err := l.ln.Close()
	l.settle.stop()
	l.stopOnce.Do(func() { close(l.stopWorkers) })
	l.awaitHandoffs(ctx)
	if l.proxy != nil {
		l.drainH1(false)
		err = errors.Join(err, l.shutdownH2(ctx))
	}
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		l.cancel()
		if l.proxy != nil {
			l.drainH1(true)
		}
		<-done
		err = errors.Join(err, ctx.Err())
	}
	l.cancel()
	if l.proxy != nil {
		l.proxy.Close()
		l.h2up.Close()
	}
	return err
}

// awaitHandoffs waits, until ctx ends, for the accept loop to stop and for the
// connections it accepted to finish their handshakes and reach their server. A binary
// upgrade's old process drains while the new one accepts: the last connections the old
// one took are then served rather than closed before a request.
func (l *Listener) awaitHandoffs(ctx context.Context) {
	if !l.serving.Load() {
		return // never served: nothing accepted
	}
	done := make(chan struct{})
	go func() {
		<-l.loopDone // no Add after this
		l.handing.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

func (l *Listener) handle(raw net.Conn) {
	front := viaFront(raw)
	if l.proxy != nil {
		raw = wrapSocket(raw) // for the idle wait of HTTP/1 (h1.go)
	} else {
		raw = tcpproxy.WrapSocket(raw) // read directly by the relay (tcpproxy/socket_linux.go)
	}
	st := l.state.Load()
	start := time.Now()
	line := Line{Listener: st.ID, Client: raw.RemoteAddr().String()}
	var conn net.Conn = raw
	info := newConnInfo(st, line.Client, front)
	if st.tls != nil {
		tc, err := l.handshake(raw, st, &line)
		l.settle.handshake(time.Now())
		if err != nil {
			l.closed()
			return
		}
		state := tc.ConnectionState()
		info.cs, conn = &state, tc
		info.domain = st.Lookup(state.ServerName)
		info.verdict = info.domain.Auth.Verdict(info.cs)
		line.setTLS(info.cs, info.verdict)
		line.Handshake = time.Since(start)
		result := "success"
		if info.domain.Auth.RefusesOverHTTP && !info.verdict.Verified() {
			result = "failure" // refused, by the HTTP layer (refusal: http)
		}
		l.deps.Metrics.Handshakes.WithLabelValues(st.ID, string(info.domain.Auth.Mode), result, info.verdict.Reason.Label()).Inc()
		l.deps.Metrics.HandshakeSeconds.WithLabelValues(st.ID, result).Observe(line.Handshake.Seconds())
		l.observeClient(st.ID, info.verdict.Presented)
		l.observe(&line, info.domain.Auth.Mode, result, info.verdict.Presented)
		if info.verdict.Grace {
			l.deps.Metrics.ClientGrace.WithLabelValues(st.ID).Inc()
		}
		if info.verdict.Audit != "" {
			l.deps.Metrics.Audit.WithLabelValues(st.ID, info.verdict.Audit).Inc()
		}
	}
	info.line = line // the connection's fields, for its requests and for revalidate
	if l.proxy != nil {
		info.identity = httpproxy.Identity(st.Forward, info.verdict, info.cs)
	}
	if info.verdict.Verified() {
		// Once its fields are set: a reload's revalidate reads them on its own goroutine.
		l.joinVerified(conn, info, st)
	}
	if l.proxy != nil {
		if tc, ok := conn.(*tls.Conn); ok && info.cs.NegotiatedProtocol == "h2" {
			l.serveHTTP(tc, info)
			return
		}
		// A new goroutine, with a small stack, waits for requests (worker.go).
		h := newH1conn(conn, info)
		l.wg.Go(func() {
			defer l.closed()
			defer l.verified.Delete(conn)
			l.serveH1(h, info)
		})
		return
	}
	// The relay may last long: on its own goroutine, not on this worker.
	l.wg.Go(func() {
		defer l.closed()
		defer l.verified.Delete(conn)
		l.relay(conn, info, &line, start)
	})
}

// handshake runs the server handshake under the listener's deadline; on failure it logs
// the handshake line with its reason code and closes the connection.
func (l *Listener) handshake(raw net.Conn, st *State, line *Line) (*tls.Conn, error) {
	start := time.Now()
	tc := tls.Server(raw, st.tls)
	ctx, cancel := context.WithTimeout(l.ctx, st.HandshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err == nil {
		return tc, nil
	}
	reason := clientauth.HandshakeReason(err, l.deps.Now())
	if errors.Is(err, context.DeadlineExceeded) {
		reason = clientauth.Timeout
	}
	state := tc.ConnectionState()
	sent := presented(err, &state)
	line.setTLS(&state, clientauth.Verdict{Reason: reason, Presented: sent})
	line.Msg, line.Err, line.Verify = "handshake", err, "FAILED"
	line.Duration = time.Since(start)
	// Metrics first, then the log line: whoever reads the line sees the counter too.
	l.observeClient(st.ID, sent)
	mode := st.Lookup(state.ServerName).Auth.Mode
	l.deps.Metrics.Handshakes.WithLabelValues(st.ID, string(mode), "failure", reason.Label()).Inc()
	l.deps.Metrics.HandshakeSeconds.WithLabelValues(st.ID, "failure").Observe(line.Duration.Seconds())
	l.observe(line, mode, "failure", sent)
	l.log(context.Background(), line)
	if state.Version == tls.VersionTLS13 && reason != clientauth.Timeout {
		// The client may have finished its side and be sending its request: it must
		// read our alert, which says why, rather than a reset (linger.go).
		l.closeLingering(raw, st.ID)
		return nil, err
	}
	_ = raw.Close()
	return nil, err
}

// observeClient records the time to expiry of a presented client certificate.
func (l *Listener) observeClient(listener string, c *x509.Certificate) {
	if c != nil {
		left := c.NotAfter.Sub(l.deps.Now())
		l.deps.Metrics.ClientExpiry.WithLabelValues(listener).Observe(left.Hours() / 24)
		l.deps.Metrics.ClientExpirySeconds.WithLabelValues(listener).Observe(left.Seconds())
	}
}

// presented finds the client certificate of a failed handshake, for the log line.
func presented(err error, cs *tls.ConnectionState) *x509.Certificate {
	if ve, ok := errors.AsType[*tls.CertificateVerificationError](err); ok && len(ve.UnverifiedCertificates) > 0 {
		return ve.UnverifiedCertificates[0]
	}
	if len(cs.PeerCertificates) > 0 {
		return cs.PeerCertificates[0]
	}
	return nil
}

// relay serves tcp and tcp_ssl: one backend connection per client connection.
func (l *Listener) relay(conn net.Conn, info *connInfo, line *Line, start time.Time) {
	group := info.domain.Group
	line.Msg = "connection"
	defer func() {
		if reason, ok := info.cut.Load().(clientauth.Reason); ok {
			cutLine(line, reason) // not the copy's error: why the copy ended
		}
		line.Duration = time.Since(start)
		l.log(context.Background(), line)
	}()
	t, err := group.Pick(line.Client)
	if err != nil {
		line.Err = err
		_ = conn.Close()
		return
	}
	bc, release, err := l.connect(group, t, line)
	defer release()
	if err != nil {
		line.Err = err
		_ = conn.Close()
		return
	}
	if v := info.state.ProxyProtocol; v != 0 {
		hdr, err := tcpproxy.ProxyHeader(v, conn.RemoteAddr(), conn.LocalAddr(), info.cs, info.verdict)
		if err == nil {
			_, err = bc.Write(hdr)
		}
		if err != nil {
			line.Err = fmt.Errorf("sending PROXY header: %w", err)
			_ = conn.Close()
			_ = bc.Close()
			return
		}
	}
	line.BytesIn, line.BytesOut, line.Err = tcpproxy.Copy(l.ctx, conn, bc, info.state.TCPIdleTimeout)
	l.deps.Metrics.Bytes.WithLabelValues(line.Listener, "in").Add(float64(line.BytesIn))
	l.deps.Metrics.Bytes.WithLabelValues(line.Listener, "out").Add(float64(line.BytesOut))
}
