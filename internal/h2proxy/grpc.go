package h2proxy

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// GRPCCode is a gRPC status code (google.golang.org/grpc/codes), of which the gateway
// itself answers these.
type GRPCCode int

// gRPC status codes the gateway sends.
const (
	GRPCCanceled         GRPCCode = 1
	GRPCDeadlineExceeded GRPCCode = 4
	GRPCPermissionDenied GRPCCode = 7
	GRPCInternal         GRPCCode = 13
	GRPCUnavailable      GRPCCode = 14
	GRPCUnauthenticated  GRPCCode = 16
)

// IsGRPC reports whether r is a gRPC call (content-type application/grpc, with or
// without a +proto/+json suffix or parameters). gRPC-Web is not: it is answered as HTTP.
// The field is looked up by its canonical name as Header.Get would, without Get's
// canonicalization of the name (about 400 instructions of every request, which the
// listener asks this of).
func IsGRPC(r *http.Request) bool {
	var ct string
	if v := r.Header["Content-Type"]; len(v) > 0 {
		ct = v[0]
	}
	rest, ok := strings.CutPrefix(ct, "application/grpc")
	return ok && (rest == "" || rest[0] == '+' || rest[0] == ';')
}

// WriteStatus answers a gRPC call that gets no response from a backend with a
// trailers-only response: HTTP 200, and grpc-status and grpc-message in the one HEADERS
// frame that ends the stream, as gRPC requires for errors (an HTML error page would
// reach a gRPC client as "unexpected HTTP status code" with the reason lost).
func WriteStatus(w http.ResponseWriter, code GRPCCode, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Status", strconv.Itoa(int(code)))
	h.Set("Grpc-Message", EncodeMessage(msg))
	w.WriteHeader(http.StatusOK)
}

// setTrailerStatus ends a gRPC response whose header was sent with a status in the
// trailers.
func setTrailerStatus(w http.ResponseWriter, code GRPCCode, msg string) {
	h := w.Header()
	h.Set(http.TrailerPrefix+"Grpc-Status", strconv.Itoa(int(code)))
	h.Set(http.TrailerPrefix+"Grpc-Message", EncodeMessage(msg))
}

// EncodeMessage percent-encodes a grpc-message value as the gRPC HTTP/2 protocol
// says: every byte outside printable ASCII, and '%'.
func EncodeMessage(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '%' {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// maxTimeout caps a grpc-timeout (100 000 000 hours would overflow a Duration).
const maxTimeout = 365 * 24 * time.Hour

// ParseTimeout reads a grpc-timeout header: at most 8 digits and a unit (H, M, S, m,
// u, n). ok is false when the header is absent or malformed.
func ParseTimeout(v string) (d time.Duration, ok bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	var n int64
	for _, c := range []byte(v[:len(v)-1]) {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	unit := map[byte]time.Duration{'H': time.Hour, 'M': time.Minute, 'S': time.Second,
		'm': time.Millisecond, 'u': time.Microsecond, 'n': time.Nanosecond}[v[len(v)-1]]
	if unit == 0 {
		return 0, false
	}
	if n > int64(maxTimeout/unit) {
		return maxTimeout, true
	}
	return time.Duration(n) * unit, true
}

// withGRPCDeadline bounds ctx by the call's grpc-timeout, so the gateway gives up on
// the backend when the client's deadline passes even if neither says so.
func withGRPCDeadline(ctx context.Context, r *http.Request) (context.Context, context.CancelFunc) {
	if d, ok := ParseTimeout(r.Header.Get("Grpc-Timeout")); ok {
		return context.WithTimeoutCause(ctx, d, errDeadline)
	}
	return context.WithCancel(ctx)
}

// StatusOf returns the gRPC status of a response as written to w: the trailer's, else
// the header's (trailers-only), else "".
func StatusOf(h http.Header) string {
	if s := h.Get(http.TrailerPrefix + "Grpc-Status"); s != "" {
		return s
	}
	return h.Get("Grpc-Status")
}
