package listener

import (
	"context"
	"crypto/tls"
	"log/slog"
	"time"

	"tlsgate/internal/clientauth"
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
	Target      string
	Method      string
	Path        string
	Status      int
	BytesIn     int64
	BytesOut    int64
	Handshake   time.Duration
	Duration    time.Duration
	Err         error
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

// setTLS fills the TLS fields from a handshake's state and verdict.
func (l *Line) setTLS(cs *tls.ConnectionState, v clientauth.Verdict) {
	l.TLSVersion = tls.VersionName(cs.Version)
	l.Cipher = cipherName(cs.CipherSuite)
	l.SNI = cs.ServerName
	l.ALPN = cs.NegotiatedProtocol
	l.Resumed = cs.DidResume
	l.Verify = v.Header()
	l.Reason = v.Reason
	if v.Presented != nil {
		id := clientauth.IdentityOf(v.Presented)
		l.Subject, l.Serial, l.Fingerprint = id.Subject, id.Serial, id.Fingerprint
	}
}

// Log writes the line at info level (warn when it carries a failure reason).
func (l *Line) Log(ctx context.Context, log *slog.Logger) {
	attrs := []slog.Attr{
		slog.String("listener", l.Listener),
		slog.String("client", l.Client),
	}
	str := func(k, v string) {
		if v != "" {
			attrs = append(attrs, slog.String(k, v))
		}
	}
	str("tls_version", l.TLSVersion)
	str("cipher", l.Cipher)
	str("sni", l.SNI)
	str("alpn", l.ALPN)
	if l.TLSVersion != "" {
		attrs = append(attrs, slog.Bool("resumed", l.Resumed))
	}
	str("client_subject", l.Subject)
	str("client_serial", l.Serial)
	str("client_fingerprint", l.Fingerprint)
	str("verify", l.Verify)
	str("reason", string(l.Reason))
	str("target", l.Target)
	str("method", l.Method)
	str("path", l.Path)
	if l.Status != 0 {
		attrs = append(attrs, slog.Int("status", l.Status))
	}
	if l.Msg != "handshake" {
		attrs = append(attrs, slog.Int64("bytes_in", l.BytesIn), slog.Int64("bytes_out", l.BytesOut))
	}
	if l.Handshake > 0 {
		attrs = append(attrs, slog.Float64("handshake_ms", ms(l.Handshake)))
	}
	attrs = append(attrs, slog.Float64("duration_ms", ms(l.Duration)))
	level := slog.LevelInfo
	if l.Err != nil {
		attrs = append(attrs, slog.String("error", l.Err.Error()))
		level = slog.LevelWarn
	}
	h := log.Handler()
	if !h.Enabled(ctx, level) {
		return
	}
	// A record without a caller PC: Logger.LogAttrs would walk the stack for one on
	// every request, and the line's source is always this function.
	r := slog.NewRecord(time.Now(), level, l.Msg, 0)
	r.AddAttrs(attrs...)
	_ = h.Handle(ctx, r)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
