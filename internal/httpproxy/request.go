package httpproxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync/atomic"
)

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
// Every name and value of the client's is checked before it is appended (names are
// tokens; values have no CR, LF, NUL or other control byte but tab), whatever parsed
// the request: a field let through unchecked would split the request. The head is
// appended to the writer's free buffer (AvailableBuffer) and handed to it in one Write;
// written a piece at a time through the writer's calls it cost 3.1 k instructions for
// the benchmark's request (Host, User-Agent, X-Request-Id), now 2.1 k (BenchmarkWriteHead).
func writeHead(bw *bufio.Writer, r *http.Request, route *Route, chunked bool) error {
	uri := r.RequestURI
	if uri == "" || (uri[0] != '/' && uri != "*") {
		uri = r.URL.RequestURI() // absolute-form: the backend gets origin-form
	}
	if !ValidToken(r.Method) || !validTarget(uri) || !ValidValue(r.Host) {
		return fmt.Errorf("%w: invalid method, target or host", errBadRequest)
	}
	b := bw.AvailableBuffer()
	if n := len(r.Method) + len(uri) + len(r.Host) + len("  HTTP/1.1\r\nHost: \r\n"); n > cap(b) {
		b = spill(bw, b, n)
	}
	b = append(b, r.Method...)
	b = append(b, ' ')
	b = append(b, uri...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, r.Host...)
	b = append(b, '\r', '\n')
	conn := r.Header["Connection"]
	for k, vs := range r.Header {
		if dropped(k) || (len(conn) > 0 && Listed(conn, k)) {
			continue
		}
		if !ValidToken(k) {
			return fmt.Errorf("%w: invalid header name %q", errBadRequest, k)
		}
		for _, v := range vs {
			if !ValidValue(v) {
				return fmt.Errorf("%w: invalid value in header %s", errBadRequest, k)
			}
			b = AppendField(bw, b, k, v)
		}
	}
	// Ours, in one piece when it fits (X-Forwarded-Host's value is r.Host, checked above).
	host, ok := route.forwardedFor(r.RemoteAddr)
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	if n := len(host) + len(r.Host) + len(proto) + len(ours); len(b)+n > cap(b) {
		b = spill(bw, b, n)
	}
	if ok {
		b = append(b, "X-Forwarded-For: "...)
		b = append(b, host...)
		b = append(b, '\r', '\n')
	}
	b = append(b, "X-Forwarded-Host: "...)
	b = append(b, r.Host...)
	b = append(b, "\r\nX-Forwarded-Proto: "...)
	b = append(b, proto...)
	b = append(b, '\r', '\n')
	if len(route.Identity) > 0 { // ranging over a nil map still starts an iterator
		for k, vs := range route.Identity {
			for _, v := range vs {
				b = AppendField(bw, b, k, v)
			}
		}
	}
	if len(b)+len(framing) > cap(b) {
		b = spill(bw, b, len(framing))
	}
	switch {
	case chunked:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	case r.ContentLength > 0:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, r.ContentLength, 10)
		b = append(b, '\r', '\n')
	case r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch:
		b = append(b, "Content-Length: 0\r\n"...)
	}
	_, err := bw.Write(append(b, '\r', '\n'))
	return err
}

// The lengths of our lines but their values, and of the longest framing with the head's
// end.
const (
	ours    = "X-Forwarded-For: \r\nX-Forwarded-Host: \r\nX-Forwarded-Proto: \r\n"
	framing = "Content-Length: 9223372036854775807\r\n\r\n"
)

// spill writes b, the free buffer of bw that was appended to, and returns the free
// buffer after it with room for n bytes, flushing bw if it must. (With an error, or a
// writer smaller than n, there may be less room: an append then grows b into memory of
// its own, and Write still sends it, in order.)
func spill(bw *bufio.Writer, b []byte, n int) []byte {
	bw.Write(b)
	if bw.Available() < n {
		bw.Flush()
	}
	return bw.AvailableBuffer()
}

// AppendField appends the line "k: v" to b, the free buffer of bw (AvailableBuffer),
// and returns b. A line that does not fit is written with what b holds, and b is the
// free buffer after it. The caller writes b (bw.Write) when it is done.
func AppendField(bw *bufio.Writer, b []byte, k, v string) []byte {
	if len(b)+len(k)+len(v)+4 > cap(b) {
		bw.Write(b)
		WriteField(bw, k, v)
		return bw.AvailableBuffer()
	}
	b = append(b, k...)
	b = append(b, ':', ' ')
	b = append(b, v...)
	return append(b, '\r', '\n')
}

// dropped reports the client's header names writeHead does not pass on: isHop's (the
// list responses are stripped of too), the Forwarded, X-Forwarded-*, X-Real-IP and
// True-Client-IP names and
// identity headers in any spelling. Only a name whose first three bytes can begin an
// identity prefix is compared with the prefixes: most are not (X-Request-Id, which the
// listener sets on every request, was compared with each of the eight, ~280
// instructions).
func dropped(k string) bool {
	if isHop(k) {
		return true
	}
	if IsForwardedHeader(k) {
		// The X-Forwarded- family describes the hop we are, which backends build
		// redirects and URLs from (Spring, Rack); X-Real-IP and True-Client-IP name the
		// client's address as X-Forwarded-For does, which we replace: backends that
		// prefer them (nginx's realip, chi's RealIP) must not take a client's word for
		// it. In any spelling, underscores too.
		return true
	}
	if len(k) < len(identityStart) {
		return IsIdentityHeader(k)
	}
	return identityStart[0][k[0]] && identityStart[1][k[1]] && identityStart[2][k[2]] && IsIdentityHeader(k)
}

// identityStart[i] marks the bytes that fold (as IsIdentityHeader folds) to byte i of
// an identity prefix, or all bytes when a prefix is shorter: a name that is not marked at
// each of its first three bytes begins with no prefix.
var identityStart = func() (t [3][256]bool) {
	for i := range t {
		for c := range 256 {
			for _, p := range identityPrefixes {
				if i >= len(p) || foldedPrefix(string([]byte{byte(c)}), p[i:i+1]) {
					t[i][c] = true
				}
			}
		}
	}
	return t
}()

// Client is a connection's client address and the host X-Forwarded-For carries for it
// (clientHost's), worked out once per connection (NewClient) where each request of a
// kept-alive connection split its RemoteAddr again (~140 instructions).
type Client struct {
	Addr string // the RemoteAddr the connection's requests carry
	host string
	ok   bool // Addr has a host
}

// NewClient is the Client of a connection whose requests carry the RemoteAddr addr.
func NewClient(addr string) Client {
	host, ok := clientHost(addr)
	return Client{Addr: addr, host: host, ok: ok}
}

// forwardedFor is the host of addr (a request's RemoteAddr) for X-Forwarded-For: the
// route's Client's when addr is its Addr (the same string in the listener's HTTP/1
// requests, compared by pointer first), worked out otherwise.
func (r *Route) forwardedFor(addr string) (string, bool) {
	if c := r.Client; c != nil && c.Addr == addr {
		return c.host, c.ok
	}
	return clientHost(addr)
}

// clientHost is net.SplitHostPort's host of a RemoteAddr, ok when it has one: an IPv4
// address and its port (dots and digits, one colon) without SplitHostPort's searches.
func clientHost(addr string) (string, bool) {
	i := len(addr) - 1
	for i >= 0 && '0' <= addr[i] && addr[i] <= '9' {
		i--
	}
	if i >= 0 && addr[i] == ':' && allIn(addr[:i], &ipv4Chars) {
		return addr[:i], true
	}
	host, _, err := net.SplitHostPort(addr)
	return host, err == nil
}

var ipv4Chars = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = 1
	}
	t['.'] = 1
	return t
}()

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
