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
