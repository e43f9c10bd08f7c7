package listener

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"tlsgate/internal/httpproxy"
)

// checkRequest applies what net/http's server checks beyond ReadRequest (which refuses
// several Host headers): a valid host on HTTP/1.1, a supported version and expectation,
// no proxy methods. tokens says the field names are known to be tokens (h1parse's fast
// path takes no others), which spares a walk over the header map.
func checkRequest(r *http.Request, tokens bool) (string, int) {
	if r.ProtoMajor != 1 {
		return "unsupported protocol version", http.StatusHTTPVersionNotSupported
	}
	switch {
	case r.Host == "" && r.ProtoAtLeast(1, 1):
		return "missing required Host header", http.StatusBadRequest
	case !httpproxy.ValidHost(r.Host):
		return "malformed Host header", http.StatusBadRequest
	}
	if !tokens && !namesValid(r.Header) {
		return "invalid header name", http.StatusBadRequest
	}
	if e := r.Header["Expect"]; len(e) > 0 && (len(e) > 1 || !strings.EqualFold(e[0], "100-continue") || !r.ProtoAtLeast(1, 1)) {
		return "unsupported expectation", http.StatusExpectationFailed
	}
	if r.Method == http.MethodConnect {
		return "CONNECT is not supported: tlsgate is a reverse proxy", http.StatusMethodNotAllowed
	}
	return "", 0
}

// namesValid reports whether every field name of h is a token: textproto checked the
// values, not all of the names.
func namesValid(h http.Header) bool {
	for k := range h {
		if !httpproxy.ValidToken(k) {
			return false
		}
	}
	return true
}

// badRequest answers a request that could not be read or is not acceptable, and the
// connection is closed after it, lingering: the rest of the request may be unread.
func badRequest(h *h1conn, err error, code ...int) {
	c := h.c
	status := http.StatusBadRequest
	he, isHeader := errors.AsType[*headerError](err)
	switch {
	case len(code) > 0:
		status = code[0]
	case isHeader:
		status = he.status
	case strings.Contains(err.Error(), "unsupported transfer encoding"):
		status = http.StatusNotImplemented
	}
	msg := strconv.Itoa(status) + " " + http.StatusText(status)
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = io.WriteString(c, "HTTP/1.1 "+msg+"\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: "+
		strconv.Itoa(len(msg)+1)+"\r\n\r\n"+msg+"\n")
	h.linger = true
}
