package listener

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"tlsgate/internal/backend"
	"tlsgate/internal/clientauth"
	"tlsgate/internal/h2proxy"
	"tlsgate/internal/httpproxy"
	"tlsgate/internal/lazytime"
)

// lines recycles request log lines, which the deferred logging and the backend error
// callback would otherwise move to the heap on every request.
var lines = sync.Pool{New: func() any { return new(Line) }}

// serveRequest proxies one request to a target of the Host's domain, under the policy
// the connection's handshake ran with.
func (l *Listener) serveRequest(w http.ResponseWriter, r *http.Request, info *connInfo) {
	start := lazytime.Now() // for the duration only: the monotonic clock alone
	st := info.state
	// The connection's fields (TLS, client identity) were filled once at the handshake.
	line := lines.Get().(*Line)
	*line = info.line
	defer func() { *line = Line{}; lines.Put(line) }()
	line.Msg, line.Method, line.Path, line.Handshake = "request", r.Method, r.URL.Path, 0
	line.Host = r.Host // the User-Agent only when the line is written (logRequest)
	id, ids := requestID(r, info.front, idSlot(w))
	line.RequestID = id
	// The request's own slice: neither header changes a value in place.
	w.Header()[HeaderRequestID] = ids
	ex := newExchange(w)
	sw := &ex.sw
	if d, ok := w.(interface{ SetWriteDeadline(time.Time) error }); ok && st.WriteTimeout > 0 {
		if _, h1 := w.(*h1writer); !h1 { // HTTP/1 bounds writes on its connection
			sw.deadline, sw.writeTimeout = d, st.WriteTimeout
			sw.stuck = time.AfterFunc(time.Hour, sw.reset)
			sw.stuck.Stop()
			defer sw.finish()
		}
	}
	info.beginRequest()
	defer func() {
		line.Status, line.BytesOut, line.Duration = sw.status, sw.n, time.Duration(ex.end()-start)
		if line.Status == 0 {
			line.Status = http.StatusOK
		}
		if reason := info.endRequest(); reason != clientauth.OK {
			cutLine(line, reason) // a reload closed the connection under this request
		}
		line.BytesIn = max(r.ContentLength, 0)
		l.grpcStatus(line, sw, r)
		line.at = ex.end()
		l.logRequest(r, line, ex.agent)
		rs := l.sets.request(st.ID)
		rs.byStatus.get(line.Status).Inc()
		rs.seconds.Observe(line.Duration.Seconds())
		rs.in.Add(float64(line.BytesIn))
		rs.out.Add(float64(line.BytesOut))
	}()
	l.routeRequest(ex, w, r, info, line)
}

// routeRequest answers r or hands it to a target. Split from serveRequest, whose
// deferred functions then have one return each to cover: Go open-codes the defers of a
// function only when defers × returns ≤ 15, and runs others through the runtime's defer
// records and a stack unwind at return (about 1.5 k instructions per request).
func (l *Listener) routeRequest(ex *exchange, w http.ResponseWriter, r *http.Request, info *connInfo, line *Line) {
	st, sw := info.state, &ex.sw
	// A Host the domain lookup would not match but a backend might read as a domain's
	// name ("a.example:443:443" cut at its first colon, "a.example.." trimmed,
	// "a%2eexample" decoded) is refused before either sees it (S1).
	if !validHost(r.Host) {
		line.Err = fmt.Errorf("malformed host %q", r.Host)
		if refuseGRPC(sw, r, h2proxy.GRPCInternal, "tlsgate: malformed host") {
			return
		}
		http.Error(sw, "400 bad request: malformed host", http.StatusBadRequest)
		return
	}
	if st.RedirectHTTPSPort != 0 {
		redirect(sw, r, st.RedirectHTTPSPort)
		return
	}
	if st.retired.Load() {
		// A reload replaced this connection's settings: serve this request under the
		// ones it was accepted with, then make the client reconnect.
		w.Header().Set("Connection", "close")
	}
	// The Host (":authority" in HTTP/2) must belong to a domain with the same TLS policy
	// as the connection's SNI. Otherwise a client could complete a one-way handshake
	// with one name and reach a mutual domain by Host, or reuse an HTTP/2 connection
	// across policies (S1, S12: emissary#3340, caddy#4696).
	domain := st.Lookup(r.Host)
	if info.cs != nil && domain.Auth != info.domain.Auth {
		line.Err = fmt.Errorf("host %q is served under another TLS policy than this connection's (SNI %q)", r.Host, info.cs.ServerName)
		if refuseGRPC(sw, r, h2proxy.GRPCUnavailable, "tlsgate: misdirected request: "+r.Host+" needs its own connection") {
			return
		}
		http.Error(sw, "421 misdirected request: "+r.Host+" needs its own connection (TLS server name "+r.Host+"); this one was opened for \""+info.cs.ServerName+"\"", http.StatusMisdirectedRequest)
		return
	}
	// refusal: http. The handshake let the client in so that it can be told why it is
	// refused; no request of an unverified client goes further than this.
	if info.domain.Auth != nil && info.domain.Auth.RefusesOverHTTP && !info.verdict.Verified() {
		line.Err = fmt.Errorf("refused: %s", info.verdict.Reason)
		if refuseUnverified(sw, r, info.verdict) {
			return
		}
		refusalPage(sw, info.verdict)
		return
	}
	// Rules match the decoded path with doubled slashes merged and path parameters
	// dropped, and a path with "." or ".." segments is refused: a backend that
	// normalizes paths must not see another path than the rules did ("/public/../admin/",
	// "//admin/", "/admin;x/", "/public/..;/admin/"; Envoy CVE-2019-9901).
	if hasDotSegment(r.URL.Path) {
		line.Err = fmt.Errorf("path %q has . or .. segments", r.URL.Path)
		if refuseGRPC(sw, r, h2proxy.GRPCInternal, "tlsgate: the path has . or .. segments") {
			return
		}
		http.Error(sw, "400 bad request: the path has . or .. segments", http.StatusBadRequest)
		return
	}
	group := domain.Group
	if rule := domain.route(mergeSlashes(dropParams(r.URL.Path))); rule != nil {
		if rule.Group != nil {
			group = rule.Group
		}
		if rule.Allow != nil && !(info.verdict.Verified() && rule.Allow.Allows(info.verdict.Chain[0])) {
			line.Reason = clientauth.NotAllowed
			l.observeRule(line, info.verdict.Presented, rule.Path)
			if refuseRule(sw, r, rule.Path, info.verdict) {
				return
			}
			http.Error(sw, "403 forbidden: "+rule.Path+" needs a verified client certificate on its allow-list", http.StatusForbidden)
			return
		}
	}
	t, err := l.pick(group, sw, r, info)
	if err != nil {
		line.Err = err
		if refuseGRPC(sw, r, h2proxy.GRPCUnavailable, "tlsgate: no healthy backend in target group "+group.ID) {
			return
		}
		http.Error(sw, "503 service unavailable: no healthy backend in target group "+group.ID, http.StatusServiceUnavailable)
		return
	}
	line.Target = t.Address
	l.toTarget(ex, w, r, info, line, group, t)
}

// toTarget proxies r to t, a target of group.
func (l *Listener) toTarget(ex *exchange, w http.ResponseWriter, r *http.Request, info *connInfo, line *Line, group *backend.Group, t *backend.Target) {
	sw := &ex.sw
	if c, ok := w.(interface{ Continue() }); ok && r.ContentLength != 0 {
		c.Continue() // HTTP/1.1 Expect: 100-continue, now that the request may go on
	}
	release := t.Acquire()
	defer release()
	failed := &ex.failed
	var ctx context.Context
	start := lazytime.Now() // the proxy times its first attempt from it, the client watch its delay
	if hw, ok := w.(*h1writer); ok {
		rc := l.h1Context(hw, r, start)
		defer rc.end()
		ctx = rc
	} else {
		c, stop := l.h2Context(r)
		defer stop()
		ctx = c
	}
	route := &ex.route
	*route = httpproxy.Route{
		Ctx:        ctx,
		Target:     t.Address,
		Group:      group,
		Picked:     t,
		Key:        info.client,
		Identity:   info.identity,
		Client:     &info.fwd,
		BackendTLS: group.TLS,
		Err:        upstreamErr(w, line, failed),
		Head:       responseHead(w),
	}
	// Before the line is logged, even when Serve panics to abort a broken response.
	defer func() {
		line.Target, line.UpstreamConnect, line.UpstreamHeader = route.Target, route.Connected, route.Header
	}()
	route.Start = start
	defer func() { l.observeUpstream(ex, group.ID, route, sw, failed) }()
	if group.Protocol.HTTP2() {
		// The HTTP/2 proxy strips the request's header in place (h2proxy's outgoing): its
		// User-Agent, which a Connection list may name, is taken for the line now.
		line.UserAgent, ex.agent = httpproxy.First(r.Header, "User-Agent"), true
		if hw, ok := w.(*h1writer); ok {
			// net/http's HTTP/2 client writes the head on a goroutine of its own, which
			// may still read the request (its header map, its strings) after Serve returned
			// on a cancelled request.
			hw.h.heldBeyond()
		}
		route.Err = func(err error) {
			noteUpstreamErr(line, failed, err) // a client gone is not the target's failure
			// Connect failures and response_timeout count; a client's grpc-timeout does not.
			if isConnect(err) || h2proxy.ResponseTimedOut(err) {
				group.Report(route.Picked, err)
			}
		}
		// A failed connect goes to another target, up to the group's retries (issue 12).
		var tried []*backend.Target
		var released []func()
		defer func() {
			for _, release := range released {
				release()
			}
		}()
		next := func(cur *backend.Target, err error) *backend.Target {
			if len(tried) >= group.Policy.Retries {
				return nil
			}
			nt := group.Retry(info.client, append(tried, cur))
			if nt == nil {
				return nil
			}
			if isConnect(err) {
				group.Report(cur, err)
			}
			tried = append(tried, cur)
			released = append(released, nt.Acquire())
			return nt
		}
		l.forwardH2(sw, r, t, route, next)
		if line.Err == nil {
			group.Report(route.Picked, nil) // a success ends a run of connect failures
		}
		return
	}
	l.proxy.Serve(sw, r, route)
}

// isConnect reports whether err is a failure to connect (the TCP connect or the TLS
// handshake to the backend), as opposed to one after the connection was made.
func isConnect(err error) bool {
	if _, ok := errors.AsType[*httpproxy.ConnectError](err); ok {
		return true
	}
	op, ok := errors.AsType[*net.OpError](err)
	return ok && op.Op == "dial"
}

// validHost reports whether h is empty (HTTP/1.0) or a host as RFC 3986 writes one
// without percent-encoding: a DNS name (letters, digits, '-' and '_' in non-empty
// labels, one trailing dot allowed) or an IPv6 literal in brackets, with an optional
// numeric port.
func validHost(h string) bool {
	if h == "" {
		return true
	}
	if h[0] == '[' {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return false
		}
		ip, err := netip.ParseAddr(h[1:end])
		rest := h[end+1:]
		return err == nil && ip.Is6() && ip.Zone() == "" && (rest == "" || rest[0] == ':' && validPort(rest[1:]))
	}
	host := h
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		if !validPort(h[i+1:]) {
			return false
		}
		host = h[:i]
	}
	host = strings.TrimSuffix(host, ".")
	label := 0
	for i := 0; i < len(host); i++ {
		switch c := host[i]; {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			label++
		default:
			return false
		}
	}
	return label > 0
}

// validPort reports whether p is a port as a Host may carry it: at most 5 digits
// (RFC 3986 allows none).
func validPort(p string) bool {
	if len(p) > 5 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

// hasDotSegment reports whether a decoded path has a "." or ".." segment, counting
// one with path parameters ("..;x"), which Tomcat and Jetty read as ".." (the
// "/public/..;/admin/" bypass of nginx-fronted Tomcat).
func hasDotSegment(p string) bool {
	for seg := range strings.SplitSeq(p, "/") {
		seg, _, _ = strings.Cut(seg, ";")
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// dropParams removes the path parameters of each segment ("/admin;jsessionid=1/x" is
// "/admin/x"), as servlet containers do before they route, so a rule sees the path
// such a backend serves.
func dropParams(p string) string {
	if !strings.Contains(p, ";") {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == ';' {
			for i+1 < len(p) && p[i+1] != '/' {
				i++
			}
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// mergeSlashes replaces runs of "/" with one.
func mergeSlashes(p string) string {
	if !strings.Contains(p, "//") {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && i > 0 && p[i-1] == '/' {
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// pick chooses the target: the one a sticky cookie names while it is available, else
// the scheduler's choice (then the cookie is set).
func (l *Listener) pick(g *backend.Group, w http.ResponseWriter, r *http.Request, info *connInfo) (*backend.Target, error) {
	if g.Cookie == "" {
		return g.Pick(info.client)
	}
	if c, err := r.Cookie(g.Cookie); err == nil {
		if t := g.Sticky(c.Value); t != nil {
			return t, nil
		}
	}
	t, err := g.Pick(info.client)
	if err == nil {
		http.SetCookie(w, &http.Cookie{Name: g.Cookie, Value: t.ID, Path: "/", HttpOnly: true, Secure: info.cs != nil, SameSite: http.SameSiteLaxMode})
	}
	return t, err
}

// redirect answers with a 308 to the same URL on https.
func redirect(w http.ResponseWriter, r *http.Request, port int) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != 443 {
		host += ":" + strconv.Itoa(port)
	}
	http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
}

// statusWriter records the status and body size; Unwrap keeps Flush and Hijack
// (WebSocket upgrades) working through http.ResponseController.
// exchange holds what of a request escapes to the heap, in one allocation.
type exchange struct {
	sw     statusWriter
	route  httpproxy.Route
	failed bool  // the upstream failed (not the client leaving)
	ended  int64 // lazytime's reading at the request's end, once taken (end)
	agent  bool  // the line's UserAgent is set already (logRequest)
}

// end is the request's end on lazytime's clock: the reading observeUpstream kept (the
// proxy's once the response was copied), else one taken now and kept.
func (ex *exchange) end() int64 {
	if ex.ended == 0 {
		ex.ended = lazytime.Now()
	}
	return ex.ended
}

type statusWriter struct {
	http.ResponseWriter
	status int
	n      int64
	// On HTTP/2, a write or flush that runs for the listener's write_timeout (a client
	// that never opens its flow-control window) resets the stream through deadline, from
	// the stuck timer. Only a write in progress is timed: a stream may stay quiet for
	// long between writes (server-sent events, gRPC streams). One timer per request,
	// stopped and reset per write: moving the stream's own deadline instead would cost
	// a message to the connection's goroutine each time.
	deadline     interface{ SetWriteDeadline(time.Time) error }
	writeTimeout time.Duration
	stuck        *time.Timer
	writing      atomic.Int32 // writes and flushes in progress
	mu           sync.Mutex   // done against the timer's reset
	done         bool         // the handler returned: the stream may be gone
}

// begin and end bracket a write or a flush.
func (w *statusWriter) begin() {
	if w.deadline != nil && w.writing.Add(1) == 1 {
		w.stuck.Reset(w.writeTimeout)
	}
}

func (w *statusWriter) end() {
	if w.deadline != nil && w.writing.Add(-1) == 0 {
		w.stuck.Stop()
	}
}

// reset ends the stream of a write stuck for writeTimeout: a deadline in the past
// resets it, and the blocked write returns.
func (w *statusWriter) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done && w.writing.Load() > 0 {
		_ = w.deadline.SetWriteDeadline(time.Unix(1, 0))
	}
}

// finish is called before the handler returns.
func (w *statusWriter) finish() {
	if w.deadline == nil {
		return
	}
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
	w.stuck.Stop()
}

// FlushError flushes (http.ResponseController) under the write timeout, as Write
// writes.
func (w *statusWriter) FlushError() error {
	w.begin()
	defer w.end()
	return http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.begin()
	n, err := w.ResponseWriter.Write(b)
	w.end()
	w.n += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// refusalPage answers a client refused under refusal: http with 403 and a plain-text
// page naming the reason, the certificate it sent and what its owner can do (nginx's
// "400 No required SSL certificate was sent", with the why). The connection is then
// closed, so the next attempt is a new handshake in which a browser asks again.
func refusalPage(w http.ResponseWriter, v clientauth.Verdict) {
	reason := v.Reason
	if reason == clientauth.OK { // a verified chain is the only pass
		reason = clientauth.NoClientCert
	}
	sent := "none was sent"
	if c := v.Presented; c != nil {
		sent = fmt.Sprintf("%s, issued by %s, valid %s to %s (UTC)", c.Subject, c.Issuer,
			c.NotBefore.UTC().Format(time.DateTime), c.NotAfter.UTC().Format(time.DateTime))
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Connection", "close")
	w.WriteHeader(http.StatusForbidden)
	fmt.Fprintf(w, "403 Forbidden: this site requires a client certificate, and yours was refused.\n\nreason:      %s\ncertificate: %s\nfix:         %s\n\n(tlsgate reason code: %s)\n",
		reason.Text(), sent, reason.Fix(), reason)
}

// observeUpstream records one request forwarded to a target: its status, whether the
// target failed it, and how long the target took (deferred, so a response cut short by
// the backend, which ends the handler with a panic, is counted too).
func (l *Listener) observeUpstream(ex *exchange, group string, route *httpproxy.Route, sw *statusWriter, failed *bool) {
	m := l.deps.Metrics
	code := sw.status
	if code == 0 {
		code = http.StatusOK
	}
	target := route.Target
	us := l.sets.upstream(group, target)
	us.byStatus.get(code).Inc()
	// The proxy's reading once the response was copied, when it has one, ends the
	// request's duration too (serveRequest): one clock read for the three.
	ex.ended = route.End
	us.seconds.Observe(time.Duration(ex.end() - route.Start).Seconds())
	if *failed {
		m.UpstreamErrors.WithLabelValues(group, target).Inc()
	}
}
