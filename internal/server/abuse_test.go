package server_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"tlsgate/internal/pki"
	"tlsgate/internal/proxytest"
)

// abuseBackend is what the backend of abuseEnv saw: requests, and big responses
// whose writing failed because tlsgate let go of the exchange.
type abuseBackend struct {
	seen     atomic.Int64
	released chan struct{}
}

// bigSize is the response to GET /big, larger than every buffer on the way.
const bigSize = 32 << 20

// abuseEnv is an env with an https listener "guard" (one_way) whose target group is a
// backend that counts the requests it was sent and answers each with a short 200, or
// bigSize bytes for /big. settings are added to the listener's YAML, top to the config's
// top level.
func abuseEnv(t testing.TB, settings, top string) (*env, *abuseBackend) {
	t.Helper()
	b := &abuseBackend{released: make(chan struct{}, 16)}
	addr := proxytest.Raw(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			b.seen.Add(1)
			_, _ = io.Copy(io.Discard, req.Body)
			switch req.URL.Path {
			case "/big":
				b.writeBig(c)
				return
			case "/quiet": // a stream quiet for longer than the tests' write_timeout (1s)
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n")
				time.Sleep(2500 * time.Millisecond)
				_, _ = io.WriteString(c, "1\r\nb\r\n0\r\n\r\n")
				continue
			}
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
				return
			}
		}
	})
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		e.groups = fmt.Sprintf("  - {id: count, targets: [{address: %s}]}\n", addr)
		e.top = top
		return "", fmt.Sprintf("  - {id: guard, protocol: https, listen: 127.0.0.1:0, target_group: count,\n     ssl: {mode: one_way, server_certificates: [site]}%s}\n", settings)
	})
	return e, b
}

// writeBig sends a bigSize response and reports when tlsgate stopped taking it.
func (b *abuseBackend) writeBig(c net.Conn) {
	_, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", bigSize)
	chunk := make([]byte, 64<<10)
	for sent := 0; err == nil && sent < bigSize; sent += len(chunk) {
		_, err = c.Write(chunk)
	}
	if err != nil {
		b.released <- struct{}{}
	}
}

// waitReleased waits for tlsgate to let go of a big response's backend exchange.
func (b *abuseBackend) waitReleased(t testing.TB) {
	t.Helper()
	select {
	case <-b.released:
	case <-time.After(30 * time.Second):
		t.Fatal("the backend exchange of a client that stopped reading was not released")
	}
}

// status reads one response's status; 0 when there is none.
func (h *h1) status() int {
	h.t.Helper()
	resp, err := http.ReadResponse(h.br, nil)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestH1AmbiguousFraming: a request a Content-Length-framing front and tlsgate could
// split differently (RFC 9112 §6.1, §6.3) is answered 400, its connection is closed and
// nothing reaches the backend. net/http alone drops the Content-Length or ignores the
// Transfer-Encoding and forwards it.
func TestH1AmbiguousFraming(t *testing.T) {
	e, b := abuseEnv(t, "", "")
	body := "5\r\nhello\r\n0\r\n\r\n"
	for _, tc := range []struct{ name, head string }{
		{"Content-Length then Transfer-Encoding", "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n"},
		{"Transfer-Encoding then Content-Length", "POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\ncontent-length: 4\r\n"},
		{"tab before chunked", "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nTransfer-Encoding:\tchunked\r\n"},
		{"obs-folded Transfer-Encoding", "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nTransfer-Encoding:\r\n chunked\r\n"},
		{"obs-fold alone", "POST / HTTP/1.1\r\nHost: localhost\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\n"},
		{"Transfer-Encoding after a bare LF", "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\nTransfer-Encoding: chunked\r\n"},
		{"Transfer-Encoding on HTTP/1.0", "POST / HTTP/1.0\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := dialH1(t, e, "guard")
			h.send(tc.head + "\r\n" + body + "GET /next HTTP/1.1\r\nHost: localhost\r\n\r\n")
			// The refusal comes at once, not when the header timeout (30 s) ends a read
			// that waits for bytes the client will never send.
			_ = h.c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if got := h.status(); got != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", got)
			}
			if !h.closed() {
				t.Fatal("connection left open")
			}
		})
	}
	t.Cleanup(func() {
		if n := b.seen.Load(); n != 0 {
			t.Errorf("the backend was sent %d requests, want none", n)
		}
	})
}

// TestH1HeaderLimits: past each header limit the request is refused (431, 414 for the
// request line) and nothing is forwarded; at the limit it passes.
func TestH1HeaderLimits(t *testing.T) {
	e, _ := abuseEnv(t, "", "")
	field := func(i, size int) string { // one field line of size bytes with its CRLF
		name := fmt.Sprintf("X-F%03d: ", i)
		return name + strings.Repeat("a", size-len(name)-2) + "\r\n"
	}
	fields := func(n, size int) string {
		var b strings.Builder
		for i := range n {
			b.WriteString(field(i, size))
		}
		return b.String()
	}
	for _, tc := range []struct {
		name, fields string
		path         string
		status       int
	}{
		{"100 fields pass", fields(99, 40), "/", 200}, // with Host: 100
		{"101 fields", fields(100, 40), "/", 431},
		{"10,000 fields", fields(10000, 12), "/", 431},
		{"a field of 8 KiB passes", field(0, 8<<10+2), "/", 200},
		{"a field over 8 KiB", field(0, 8<<10+3), "/", 431},
		{"a field of 100,000 bytes", field(0, 100000), "/", 431},
		{"a block over 64 KiB", fields(9, 8<<10), "/", 431},
		{"a request line over 8 KiB", "", "/" + strings.Repeat("p", 8<<10), 414},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := dialH1(t, e, "guard")
			go func() { // the server may refuse before reading all of it
				_, _ = io.WriteString(h.c, "GET "+tc.path+" HTTP/1.1\r\nHost: localhost\r\n"+tc.fields+"\r\n")
			}()
			if got := h.status(); got != tc.status {
				t.Fatalf("status %d, want %d", got, tc.status)
			}
			if tc.status == http.StatusOK {
				return
			}
			if !h.closed() {
				t.Fatal("connection left open")
			}
		})
	}
}

// TestH1SmallHeaderLimits: limits set below a common request's size hold for the small,
// whole heads the HTTP/1 fast path reads (the limits travel with it; past one it leaves
// the head to the byte scan, which answers), at the limit the request passes.
func TestH1SmallHeaderLimits(t *testing.T) {
	e, _ := abuseEnv(t, ", max_header_bytes: 80, max_header_fields: 3, max_header_field_bytes: 24", "")
	for _, tc := range []struct {
		name, head string
		status     int
	}{
		{"at the limits", "GET /0123456789 HTTP/1.1\r\nHost: localhost\r\nX-A: 12\r\nX-B: 0123456789abcdefghi\r\n\r\n", 200}, // 80 bytes, 3 fields, lines of 24
		{"a field line over", "GET / HTTP/1.1\r\nHost: localhost\r\nX-B: 0123456789abcdefghij\r\n\r\n", 431},
		{"a request line over", "GET /0123456789a HTTP/1.1\r\nHost: localhost\r\n\r\n", 414},
		{"4 fields", "GET / HTTP/1.1\r\nHost: localhost\r\nX-A: 1\r\nX-B: 2\r\nX-C: 3\r\n\r\n", 431},
		{"a block over", "GET /0123456789 HTTP/1.1\r\nHost: localhost\r\nX-A: 123\r\nX-B: 0123456789abcdefghi\r\n\r\n", 431},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := dialH1(t, e, "guard")
			go func() { _, _ = io.WriteString(h.c, tc.head) }()
			if got := h.status(); got != tc.status {
				t.Fatalf("status %d, want %d", got, tc.status)
			}
			if tc.status != http.StatusOK && !h.closed() {
				t.Fatal("connection left open")
			}
		})
	}
}

// TestH1HeaderBudget: connections that send unfinished headers take from the process's
// header budget (max_header_memory); past it a new header read is refused (503) and its
// connection closed, instead of memory growing with every connection.
func TestH1HeaderBudget(t *testing.T) {
	e, _ := abuseEnv(t, "", "max_header_memory: 262144")
	const conns = 12 // 12 × 60 KiB: 720 KiB, past the 256 KiB budget
	partial := "GET / HTTP/1.1\r\nHost: localhost\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("a", 6000)+"\r\n", 10)
	refused := make(chan int, conns)
	for range conns {
		h := dialH1(t, e, "guard")
		h.send(partial)
		go func() { refused <- h.status() }()
	}
	select {
	case got := <-refused:
		if got != http.StatusServiceUnavailable {
			t.Fatalf("first answer %d, want 503 (refused past the budget)", got)
		}
	case <-time.After(20 * time.Second): // the header timeout is 30 s: only the budget answers sooner
		t.Fatal("no connection refused past the header budget")
	}
}
