package listener

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"tlsgate/internal/httpproxy"
)

// h1writer is the http.ResponseWriter of one HTTP/1.x request. Bodies are framed by
// the Content-Length the handler set, else chunked (HTTP/1.1) or ended by closing
// (HTTP/1.0).
type h1writer struct {
	h1resp // all of it new for each request
	// rc is the request's backend exchange's context (h1Context), in the writer's
	// allocation. A writer of a run of requests serves the next one (keptBufs): rc is
	// then reset under its lock, which cancelRequests may hold at that moment. A writer
	// whose rc went out as a parent (reqCtx.held) serves no other request.
	rc reqCtx
	// errFn is the proxy's Err for the writer's requests (upstreamErr), made once; it
	// reports to the current request's line and failure flag.
	errFn     func(error)
	errLine   *Line
	errFailed *bool
	// head is the storage of the proxied response's head (httpproxy.Route.Head), made at
	// the writer's first proxied request: the strings of the response's header live
	// there until the writer serves its next request, after the header was emptied.
	head []byte
}

// h1resp is the state of one request and its response.
type h1resp struct {
	h      *h1conn
	br     *bufio.Reader
	bw     *bufio.Writer
	req    *http.Request
	header http.Header

	wroteHeader bool
	status      int
	noBody      bool
	chunked     bool
	remain      int64 // body bytes still owed under a Content-Length; -1 if none
	closeAfter  bool  // framing or the client's wish means no further request
	failed      bool  // a write failed or the body fell short of its length
	hijacked    bool
	continued   bool // "100 Continue" was sent
	scratch     [32]byte

	// What a request needs besides, in the writer's allocation instead of allocations of
	// their own: its exchange (serveRequest) and the values slice of its request id.
	// Nothing outlives the request that points to them: a writer is reused only after a
	// request without a body, served without an upgrade or a panic (serveOne).
	ex  exchange
	ids [1]string
}

// newExchange returns the state of w's request at the proxy: part of w when it is an
// HTTP/1 writer.
func newExchange(w http.ResponseWriter) *exchange {
	if hw, ok := w.(*h1writer); ok {
		hw.ex = exchange{sw: statusWriter{ResponseWriter: w}}
		return &hw.ex
	}
	return &exchange{sw: statusWriter{ResponseWriter: w}}
}

// idSlot is storage for the values of w's request id: w's own on HTTP/1, else nil.
func idSlot(w http.ResponseWriter) []string {
	if hw, ok := w.(*h1writer); ok {
		return hw.ids[:]
	}
	return nil
}

// upstreamErr returns the proxy's Err for a request (httpproxy.Route.Err): the error
// goes to the access line, and counts as the upstream's failure unless the client left
// (logged as 499). An HTTP/1 writer makes the function once and keeps it for the
// requests it serves: a closure per request was an allocation.
func upstreamErr(w http.ResponseWriter, line *Line, failed *bool) func(error) {
	hw, ok := w.(*h1writer)
	if !ok {
		return func(err error) { noteUpstreamErr(line, failed, err) }
	}
	hw.errLine, hw.errFailed = line, failed
	if hw.errFn == nil {
		hw.errFn = func(err error) { noteUpstreamErr(hw.errLine, hw.errFailed, err) }
	}
	return hw.errFn
}

// respHeadBytes is the longest response head an HTTP/1 writer keeps the bytes of
// (responseHead); a longer one gets a string of its own.
const respHeadBytes = 1 << 10

// responseHead returns the storage for the head of w's proxied response: an HTTP/1
// writer's own (reused: a string per response was an allocation whose first stores
// missed the cache), else nil.
func responseHead(w http.ResponseWriter) []byte {
	hw, ok := w.(*h1writer)
	if !ok {
		return nil
	}
	if hw.head == nil {
		hw.head = make([]byte, respHeadBytes)
	}
	return hw.head
}

func noteUpstreamErr(line *Line, failed *bool, err error) {
	line.Err = err
	*failed = *failed || !errors.Is(err, httpproxy.ErrClientClosed)
}

func (w *h1writer) Header() http.Header { return w.header }

func (w *h1writer) WriteHeader(code int) {
	if w.wroteHeader || w.hijacked {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.writeStatus(code)
		w.writeFields()
		_, _ = w.bw.WriteString("\r\n")
		_ = w.bw.Flush()
		return
	}
	w.wroteHeader, w.status = true, code
	r := w.req
	w.noBody = r.Method == http.MethodHead || code == http.StatusNoContent || code == http.StatusNotModified
	w.writeStatus(code)
	b, f := w.appendFinalFields()
	w.closeAfter = w.closeAfter || r.Close || httpproxy.Listed(f.conn, "close")
	if f.length >= 0 && !w.noBody {
		w.remain = f.length
	}
	if !w.noBody && w.remain < 0 {
		if r.ProtoAtLeast(1, 1) {
			w.chunked = true
		} else {
			w.closeAfter = true
		}
	}
	if w.h.state.Load() == h1Closing {
		w.closeAfter = true
	}
	if !f.date {
		b = httpproxy.AppendField(w.bw, b, "Date", dateNow())
	}
	if w.chunked {
		b = appendLine(w.bw, b, "Transfer-Encoding: chunked\r\n")
	}
	if w.closeAfter {
		if len(f.conn) == 0 {
			b = appendLine(w.bw, b, "Connection: close\r\n")
		}
	} else if !r.ProtoAtLeast(1, 1) {
		b = appendLine(w.bw, b, "Connection: keep-alive\r\n")
	}
	b = appendLine(w.bw, b, "\r\n")
	_, _ = w.bw.Write(b)
}

// appendLine appends s to b, bw's free buffer, as httpproxy.AppendField appends a field.
func appendLine(bw *bufio.Writer, b []byte, s string) []byte {
	if len(b)+len(s) > cap(b) {
		_, _ = bw.Write(b)
		_, _ = bw.WriteString(s)
		return bw.AvailableBuffer()
	}
	return append(b, s...)
}

// framing is what appendFinalFields saw of the fields a final response's framing
// depends on.
type framing struct {
	conn   []string // Connection's values
	length int64    // a valid Content-Length's, -1 when none
	date   bool     // the header has a Date (with values or none)
}

// appendFinalFields appends a final response's header fields to the writer's free
// buffer, which it returns (the caller writes it), as writeFields does, and notes the
// fields the framing depends on as it meets them, where WriteHeader looked each up in
// the header (Connection, Content-Length, Date and Transfer-Encoding's delete: ~500
// instructions a response). Transfer-Encoding is dropped from the header (the writer
// frames the body itself), and so is a Content-Length that is not one valid length,
// as before. A missing Date is not added to the header: WriteHeader appends it after
// the fields (the header's order is the map's anyway).
func (w *h1writer) appendFinalFields() ([]byte, framing) {
	f := framing{length: -1}
	h := w.header
	b := w.bw.AvailableBuffer()
	for k, vs := range h {
		switch k {
		case "Transfer-Encoding":
			delete(h, k)
			continue
		case "Content-Length":
			if len(vs) == 0 {
				continue
			}
			n, err := strconv.ParseInt(vs[0], 10, 64)
			if err != nil || n < 0 || len(vs) != 1 {
				delete(h, k)
				continue
			}
			f.length = n
		case "Connection":
			f.conn = vs
		case "Date":
			f.date = true
		default:
			if !sendable(k) {
				continue
			}
		}
		b = w.appendValues(b, k, vs)
	}
	return b, f
}

// writeStatus writes the status line: a known code's made once (statusLines), where
// each response's appended its digits and looked its text up (~360 instructions).
func (w *h1writer) writeStatus(code int) {
	if uint(code-100) < uint(len(statusLines)) {
		if line := statusLines[code-100]; line != "" {
			_, _ = w.bw.WriteString(line)
			return
		}
	}
	b := append(w.scratch[:0], "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	_, _ = w.bw.Write(b)
	text := http.StatusText(code)
	if text == "" {
		text = "status code " + strconv.Itoa(code)
	}
	_, _ = w.bw.WriteString(text)
	_, _ = w.bw.WriteString("\r\n")
}

// statusLines is the status line of each code from 100 to 599 that has a text
// (http.StatusText), "" for the others.
var statusLines = func() (t [500]string) {
	for i := range t {
		if text := http.StatusText(100 + i); text != "" {
			t[i] = "HTTP/1.1 " + strconv.Itoa(100+i) + " " + text + "\r\n"
		}
	}
	return t
}()

// writeFields writes the header fields; invalid names or values (which could split the
// response) are dropped, as are trailers. They are appended to the writer's free buffer
// and handed to it in one Write (a Write per field cost ~50 instructions).
func (w *h1writer) writeFields() {
	b := w.bw.AvailableBuffer()
	for k, vs := range w.header {
		if sendable(k) {
			b = w.appendValues(b, k, vs)
		}
	}
	_, _ = w.bw.Write(b)
}

// sendable reports whether a header name goes out as a field: a token (an invalid name
// could split the response) and not a trailer's (http.TrailerPrefix).
func sendable(k string) bool {
	return !strings.HasPrefix(k, http.TrailerPrefix) && httpproxy.ValidToken(k)
}

// appendValues appends a field for each of k's valid values to b, the writer's free
// buffer, and returns it; an invalid value (which could split the response) is dropped.
func (w *h1writer) appendValues(b []byte, k string, vs []string) []byte {
	for _, v := range vs {
		if httpproxy.ValidValue(v) {
			b = httpproxy.AppendField(w.bw, b, k, v)
		}
	}
	return b
}

func (w *h1writer) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.noBody {
		return 0, http.ErrBodyNotAllowed
	}
	if w.remain >= 0 {
		if int64(len(p)) > w.remain {
			n, _ := w.write(p[:w.remain])
			w.remain = 0
			return n, http.ErrContentLength
		}
		w.remain -= int64(len(p))
	}
	if w.chunked {
		if len(p) == 0 {
			return 0, nil
		}
		b := strconv.AppendInt(w.scratch[:0], int64(len(p)), 16)
		b = append(b, '\r', '\n')
		_, _ = w.bw.Write(b)
		n, err := w.write(p)
		if err == nil {
			_, err = w.bw.WriteString("\r\n")
		}
		return n, err
	}
	return w.write(p)
}

func (w *h1writer) write(p []byte) (int, error) {
	n, err := w.bw.Write(p)
	if err != nil {
		w.failed = true
	}
	return n, err
}

func (w *h1writer) WriteString(s string) (int, error) { return w.Write([]byte(s)) }

// finish ends the response: the header if the handler wrote none, the last chunk with
// any trailers, and notes a body shorter than its Content-Length (the connection then
// cannot be reused).
func (w *h1writer) finish() {
	if !w.wroteHeader {
		if _, ok := w.header["Content-Length"]; !ok && w.req.Method != http.MethodHead {
			w.header["Content-Length"] = []string{"0"}
		}
		w.WriteHeader(http.StatusOK)
	}
	if w.chunked {
		_, _ = w.bw.WriteString("0\r\n")
		for k, vs := range w.header {
			name, ok := strings.CutPrefix(k, http.TrailerPrefix)
			if !ok || !httpproxy.ValidToken(name) {
				continue
			}
			for _, v := range vs {
				if httpproxy.ValidValue(v) {
					httpproxy.WriteField(w.bw, name, v)
				}
			}
		}
		_, _ = w.bw.WriteString("\r\n")
	}
	if w.remain > 0 {
		w.failed = true
	}
}

// Flush sends what is buffered (server-sent events, streamed bodies).
func (w *h1writer) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if err := w.bw.Flush(); err != nil {
		w.failed = true
	}
}

// FlushError is Flush for http.ResponseController.
func (w *h1writer) FlushError() error {
	w.Flush()
	if w.failed {
		return errors.New("writing to the client failed")
	}
	return nil
}

// Hijack hands the connection over (WebSocket upgrades through httputil.ReverseProxy),
// with the reader holding any bytes the client already sent.
func (w *h1writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.wroteHeader {
		return nil, nil, errors.New("hijack after the response header was written")
	}
	w.hijacked = true
	// An upgraded connection (a WebSocket) may stay quiet for long in one direction: no
	// write timeout from here on, for the 101 written through w.bw or after it.
	w.h.writeTimeout = 0
	_ = w.h.c.SetWriteDeadline(time.Time{})
	// Nor the header's or the idle wait's read deadline, which may still be armed
	// (readHeader clears it only for a request with a body).
	_ = w.h.c.SetReadDeadline(time.Time{})
	return w.h.c, bufio.NewReadWriter(w.br, w.bw), nil
}

// SetReadDeadline lets the proxy stop reading a request body the backend did not wait for.
func (w *h1writer) SetReadDeadline(t time.Time) error {
	w.closeAfter = true
	return w.h.c.SetReadDeadline(t)
}

// SetWriteDeadline is for http.ResponseController.
func (w *h1writer) SetWriteDeadline(t time.Time) error { return w.h.c.SetWriteDeadline(t) }

// EnableFullDuplex: this loop reads a body and writes the response independently.
func (w *h1writer) EnableFullDuplex() error { return nil }

// Continue sends "100 Continue" to a client that waits for it before its body.
func (w *h1writer) Continue() {
	if w.req.Header.Get("Expect") != "" && !w.wroteHeader && !w.continued {
		w.continued = true
		_, _ = w.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
		_ = w.bw.Flush()
	}
}
