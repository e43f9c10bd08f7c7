package listener

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"tlsgate/internal/clientauth"
	"tlsgate/internal/httpproxy"
	"tlsgate/internal/logsink"
)

// Line is one JSON log line: a handshake failure, a TCP connection or an HTTP request.
// Its keys are SPEC §5's field names and are frozen here.
type Line struct {
	Msg         string // "handshake", "connection" or "request"
	Listener    string
	Client      string
	TLSVersion  string
	Cipher      string
	SNI         string
	ALPN        string
	Resumed     bool
	Subject     string
	Serial      string
	Fingerprint string
	Verify      string // SUCCESS, NONE, FAILED
	Reason      clientauth.Reason
	Grace       bool   // verified only by the expiry grace (client_grace)
	Audit       string // what ssl.audit would decide: "ok" or a reason code
	Target      string
	Method      string
	Host        string // the request's Host (":authority" in HTTP/2)
	Path        string
	UserAgent   string
	RequestID   string // X-Request-Id: a trusted front's, else made here (requestid.go)
	Status      int
	GRPCStatus  string // the grpc-status of a gRPC call, "" for other requests
	BytesIn     int64
	BytesOut    int64
	// UpstreamConnect is the time to get a backend connection (dialled, with its TLS
	// handshake, or taken from the pool); UpstreamHeader the time until the backend's
	// response header was read. Both count from the start of that attempt, as nginx's
	// $upstream_connect_time and $upstream_header_time do.
	UpstreamConnect time.Duration
	UpstreamHeader  time.Duration
	Handshake       time.Duration
	Duration        time.Duration
	Err             error

	// conn is the JSON of the connection's fields, shared by the lines of its
	// requests (setTLS makes it); nil: each line writes them.
	conn *connJSON
	// at, when not 0, is the lazytime reading the line's time is (wallAt): a request's
	// end, read already for its duration. 0: the time the line is written.
	at int64
}

// Access is a listener's log.access policy (config.ParseAccess). The zero value
// writes every line.
type Access struct {
	// Skip is the share of lines without a failure that are not written: 0 writes all
	// (log.access: all), 1 none (errors), 0.9 one in ten (a sample rate of 0.1).
	Skip float64
	// Off drops the lines with a failure too (log.access: off).
	Off bool
}

// keep decides whether line is written.
func (a Access) keep(l *Line) bool {
	switch {
	case a.Off:
		return false
	case a.Skip == 0 || l.failed():
		return true
	case a.Skip >= 1:
		return false
	}
	return rand.Float64() >= a.Skip
}

// failed reports whether a line records a failure: an error, a refused handshake or
// client, or a 5xx status (what HAProxy's dontlog-normal keeps).
func (l *Line) failed() bool {
	return l.Err != nil || strings.HasPrefix(l.Verify, "FAILED") || l.Status >= 500 || l.Reason == clientauth.NotAllowed
}

// log writes line under the access policy of the current state: a reload changes it at
// once, for the lines of open connections too.
func (l *Listener) log(ctx context.Context, line *Line) {
	if l.state.Load().Access.keep(line) {
		line.Log(ctx, l.deps.Log)
	}
}

// logRequest is log for a request's line, which takes the request's User-Agent only
// when it is written: with log.access off or sampling it out, the lookup in the header
// map (~145 instructions a kept-alive request) is not made. The policy is the current
// state's, as for every line. agent: the line has it already (the request's header was
// changed since it was read, toTarget). r's header is the request's until serveRequest
// returns, its strings too (keptBufs.requestHead).
func (l *Listener) logRequest(r *http.Request, line *Line, agent bool) {
	if !l.state.Load().Access.keep(line) {
		return
	}
	if !agent {
		line.UserAgent = httpproxy.First(r.Header, "User-Agent")
	}
	line.Log(r.Context(), l.deps.Log)
}

// cipherNames is tls.CipherSuiteName without its per-call allocation of the suite list.
var cipherNames = func() map[uint16]string {
	m := map[uint16]string{}
	for _, cs := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		m[cs.ID] = cs.Name
	}
	return m
}()

func cipherName(id uint16) string {
	if n, ok := cipherNames[id]; ok {
		return n
	}
	return tls.CipherSuiteName(id)
}

// setTLS fills the TLS fields from a handshake's state and verdict. A handshake that
// failed before a version or cipher suite was agreed has none to log (not "0x0000").
func (l *Line) setTLS(cs *tls.ConnectionState, v clientauth.Verdict) {
	if cs.Version != 0 {
		l.TLSVersion = tls.VersionName(cs.Version)
	}
	if cs.CipherSuite != 0 {
		l.Cipher = cipherName(cs.CipherSuite)
	}
	l.SNI = cs.ServerName
	l.ALPN = cs.NegotiatedProtocol
	l.Resumed = cs.DidResume
	l.Verify = v.Header()
	l.Reason = v.Reason
	l.Grace = v.Grace
	l.Audit = v.Audit
	if v.Presented != nil {
		id := clientauth.IdentityOf(v.Presented)
		l.Subject, l.Serial, l.Fingerprint = id.Subject, id.Serial, id.Fingerprint
	}
	l.conn = new(connJSON)
}

// connJSON is the JSON of a connection's fields (listener to audit), made by the first
// line that writes them and copied by the later lines of the connection's requests,
// where each line escaped some ten strings again: about 1.3 k of the 5.6 k
// instructions a request's line took. A line whose connection fields differ from those
// it was made of (a reload cut the connection, a rule refused the client) writes its
// own. HTTP/2's concurrent requests share it: it is set once, atomically.
type connJSON struct{ p atomic.Pointer[connPrefix] }

type connPrefix struct {
	of   Line // the connection fields it was made of, the rest zero
	json []byte
}

// connFields is l's connection fields alone.
func connFields(l *Line) Line {
	return Line{Listener: l.Listener, Client: l.Client, TLSVersion: l.TLSVersion, Cipher: l.Cipher, SNI: l.SNI,
		ALPN: l.ALPN, Resumed: l.Resumed, Subject: l.Subject, Serial: l.Serial, Fingerprint: l.Fingerprint,
		Verify: l.Verify, Reason: l.Reason, Grace: l.Grace, Audit: l.Audit}
}

// sameConn reports whether a and b have the same connection fields.
func sameConn(a, b *Line) bool {
	return a.Listener == b.Listener && a.Client == b.Client && a.TLSVersion == b.TLSVersion &&
		a.Cipher == b.Cipher && a.SNI == b.SNI && a.ALPN == b.ALPN && a.Resumed == b.Resumed &&
		a.Subject == b.Subject && a.Serial == b.Serial && a.Fingerprint == b.Fingerprint &&
		a.Verify == b.Verify && a.Reason == b.Reason && a.Grace == b.Grace && a.Audit == b.Audit
}

// appendConnJSON appends the connection's fields, from the connection's JSON when
// the line's are those it was made of.
func (l *Line) appendConnJSON(b []byte) []byte {
	c := l.conn
	if c == nil {
		return l.appendConn(b)
	}
	if p := c.p.Load(); p != nil && sameConn(&p.of, l) {
		return append(b, p.json...)
	}
	start := len(b)
	b = l.appendConn(b)
	if c.p.Load() == nil {
		c.p.Store(&connPrefix{of: connFields(l), json: bytes.Clone(b[start:])})
	}
	return b
}

var (
	attrBufs = sync.Pool{New: func() any { return new([32]slog.Attr) }}
	lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}
)

// Log writes the line at info level (warn when it carries a failure reason).
func (l *Line) Log(ctx context.Context, log *slog.Logger) {
	if l.at != 0 {
		l.logAt(ctx, log, wallAt(l.at))
		return
	}
	l.logAt(ctx, log, time.Now())
}

// logAt is Log at time t. A line is logged per request: the JSON handler takes its
// fields encoded here (appendJSON) after its head, in one buffer; other handlers
// (log.format text) slog attributes.
func (l *Line) logAt(ctx context.Context, log *slog.Logger, t time.Time) {
	level := slog.LevelInfo
	if l.Err != nil {
		level = slog.LevelWarn
	}
	h := log.Handler()
	if !h.Enabled(ctx, level) {
		return
	}
	if jh, ok := h.(logsink.JSONLineHandler); ok {
		bp := lineBufs.Get().(*[]byte)
		b := jh.AppendHead((*bp)[:0], t, level, l.Msg)
		b, _ = jh.WriteLine(l.appendJSON(b))
		if cap(b) <= 64<<10 {
			*bp = b
			lineBufs.Put(bp)
		}
		return
	}
	bp := attrBufs.Get().(*[32]slog.Attr)
	defer func() { clear(bp[:]); attrBufs.Put(bp) }()
	attrs := l.attrs(bp[:0])
	// A record without a caller PC: Logger.LogAttrs would walk the stack for one on
	// every request, and the line's source is always this function.
	r := slog.NewRecord(t, level, l.Msg, 0)
	r.AddAttrs(attrs...)
	_ = h.Handle(ctx, r)
}

// appendJSON appends the line's fields as attrs has them, each as slog's JSON handler
// writes it: `,"key":value`, in SPEC order, leaving out empty ones.
func (l *Line) appendJSON(b []byte) []byte {
	b = l.appendConnJSON(b)
	b = jsonStr(b, `,"target":`, l.Target)
	b = jsonStr(b, `,"method":`, l.Method)
	b = jsonStr(b, `,"host":`, l.Host)
	b = jsonStr(b, `,"path":`, l.Path)
	b = jsonStr(b, `,"user_agent":`, l.UserAgent)
	b = jsonStr(b, `,"request_id":`, l.RequestID)
	if l.Status != 0 {
		b = append(b, `,"status":`...)
		b = logsink.AppendInt(b, int64(l.Status))
	}
	b = jsonStr(b, `,"grpc_status":`, l.GRPCStatus)
	if l.Msg != "handshake" {
		b = append(b, `,"bytes_in":`...)
		b = logsink.AppendInt(b, l.BytesIn)
		b = append(b, `,"bytes_out":`...)
		b = logsink.AppendInt(b, l.BytesOut)
	}
	if l.UpstreamConnect > 0 {
		b = append(b, `,"upstream_connect_ms":`...)
		b = logsink.AppendMillis(b, l.UpstreamConnect)
	}
	if l.UpstreamHeader > 0 {
		b = append(b, `,"upstream_header_ms":`...)
		b = logsink.AppendMillis(b, l.UpstreamHeader)
	}
	if l.Handshake > 0 {
		b = append(b, `,"handshake_ms":`...)
		b = logsink.AppendMillis(b, l.Handshake)
	}
	b = append(b, `,"duration_ms":`...)
	b = logsink.AppendMillis(b, l.Duration)
	if l.Err != nil {
		b = append(b, `,"error":`...)
		b = logsink.AppendString(b, l.Err.Error())
	}
	return b
}

// appendConn appends the connection's fields: listener to audit.
func (l *Line) appendConn(b []byte) []byte {
	b = append(b, `,"listener":`...)
	b = logsink.AppendString(b, l.Listener)
	b = append(b, `,"client":`...)
	b = logsink.AppendString(b, l.Client)
	b = jsonStr(b, `,"client_ip":`, clientIP(l.Client))
	b = jsonStr(b, `,"tls_version":`, l.TLSVersion)
	b = jsonStr(b, `,"cipher":`, l.Cipher)
	b = jsonStr(b, `,"sni":`, l.SNI)
	b = jsonStr(b, `,"alpn":`, l.ALPN)
	if l.TLSVersion != "" {
		b = append(b, `,"resumed":`...)
		b = strconv.AppendBool(b, l.Resumed)
	}
	b = jsonStr(b, `,"client_subject":`, l.Subject)
	b = jsonStr(b, `,"client_serial":`, l.Serial)
	b = jsonStr(b, `,"client_fingerprint":`, l.Fingerprint)
	b = jsonStr(b, `,"verify":`, l.Verify)
	b = jsonStr(b, `,"reason":`, string(l.Reason))
	if l.Grace {
		b = append(b, `,"client_grace":true`...)
	}
	b = jsonStr(b, `,"audit":`, l.Audit)
	return b
}

// jsonStr appends key (`,"name":`) and v when v is not empty.
func jsonStr(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, key...)
	return logsink.AppendString(b, v)
}

// attrs appends the line's fields, in SPEC order, leaving out empty ones.
func (l *Line) attrs(attrs []slog.Attr) []slog.Attr {
	attrs = append(attrs, slog.String("listener", l.Listener), slog.String("client", l.Client))
	attrs = appendStr(attrs, "client_ip", clientIP(l.Client))
	attrs = appendStr(attrs, "tls_version", l.TLSVersion)
	attrs = appendStr(attrs, "cipher", l.Cipher)
	attrs = appendStr(attrs, "sni", l.SNI)
	attrs = appendStr(attrs, "alpn", l.ALPN)
	if l.TLSVersion != "" {
		attrs = append(attrs, slog.Bool("resumed", l.Resumed))
	}
	attrs = appendStr(attrs, "client_subject", l.Subject)
	attrs = appendStr(attrs, "client_serial", l.Serial)
	attrs = appendStr(attrs, "client_fingerprint", l.Fingerprint)
	attrs = appendStr(attrs, "verify", l.Verify)
	attrs = appendStr(attrs, "reason", string(l.Reason))
	if l.Grace {
		attrs = append(attrs, slog.Bool("client_grace", true))
	}
	attrs = appendStr(attrs, "audit", l.Audit)
	attrs = appendStr(attrs, "target", l.Target)
	attrs = appendStr(attrs, "method", l.Method)
	attrs = appendStr(attrs, "host", l.Host)
	attrs = appendStr(attrs, "path", l.Path)
	attrs = appendStr(attrs, "user_agent", l.UserAgent)
	attrs = appendStr(attrs, "request_id", l.RequestID)
	if l.Status != 0 {
		attrs = append(attrs, slog.Int("status", l.Status))
	}
	attrs = appendStr(attrs, "grpc_status", l.GRPCStatus)
	if l.Msg != "handshake" {
		attrs = append(attrs, slog.Int64("bytes_in", l.BytesIn), slog.Int64("bytes_out", l.BytesOut))
	}
	if l.UpstreamConnect > 0 {
		attrs = append(attrs, slog.Float64("upstream_connect_ms", ms(l.UpstreamConnect)))
	}
	if l.UpstreamHeader > 0 {
		attrs = append(attrs, slog.Float64("upstream_header_ms", ms(l.UpstreamHeader)))
	}
	if l.Handshake > 0 {
		attrs = append(attrs, slog.Float64("handshake_ms", ms(l.Handshake)))
	}
	attrs = append(attrs, slog.Float64("duration_ms", ms(l.Duration)))
	if l.Err != nil {
		attrs = append(attrs, slog.String("error", l.Err.Error()))
	}
	return attrs
}

// clientIP is the address of a client's host:port, without brackets or port; "" when
// it has no port (a unix socket, say). It slices, so logging it costs no allocation.
func clientIP(hostport string) string {
	i := strings.LastIndexByte(hostport, ':')
	if i < 0 {
		return ""
	}
	h := hostport[:i]
	if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
		h = h[1 : len(h)-1]
	}
	if v4, ok := strings.CutPrefix(h, "::ffff:"); ok && strings.IndexByte(v4, '.') >= 0 {
		h = v4 // an IPv4 client of a dual-stack socket
	}
	return h
}

func appendStr(attrs []slog.Attr, k, v string) []slog.Attr {
	if v == "" {
		return attrs
	}
	return append(attrs, slog.String(k, v))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
