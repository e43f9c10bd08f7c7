package server_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"tlsgate/internal/pki"
	"tlsgate/internal/proxytest"
)

// uploadBody is larger than what the kernel's buffers on both ends hold on loopback,
// so the client is still writing when the server answers and closes.
const uploadBody = 8 << 20

// dialListener connects to listener id: TLS 1.3, or plain TCP for "plain".
func (e *env) dialListener(t *testing.T, id string) net.Conn {
	t.Helper()
	var c net.Conn
	var err error
	if id == "plain" {
		c, err = net.Dial("tcp", e.addr(id))
	} else {
		c, err = tls.Dial("tcp", e.addr(id), e.tlsConfig(tls.VersionTLS13, nil))
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	return c
}

// readToEnd reads what is left until the server's end; an error other than an end
// (EOF, or TLS's unexpected EOF when the server closed without close_notify) fails t.
func readToEnd(t *testing.T, r io.Reader) {
	t.Helper()
	if _, err := io.Copy(io.Discard, r); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("reading to the server's end: %v", err)
	}
}

// TestRefusedUploadGetsAnswer: a client that writes its whole request, body included,
// before it reads (Python's http.client, most scripts) must get the answer to a
// request refused before its body was read, as with nginx's lingering_close. Closing
// with the body unread made the kernel reset the connection: the client's write
// failed and it never read the answer. The close lingers (counted), then ends once the
// client closes.
func TestRefusedUploadGetsAnswer(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	for _, tc := range []struct {
		name, id, head string
		status         int
	}{
		{"malformed Host (badRequest)", "one_way", "POST / HTTP/1.1\r\nHost: bad host\r\n", http.StatusBadRequest},
		{"dot segment (answered, body over maxDiscard)", "one_way", "POST /a/../b HTTP/1.1\r\nHost: localhost\r\n", http.StatusBadRequest},
		{"malformed Host, plain http", "plain", "POST / HTTP/1.1\r\nHost: bad host\r\n", http.StatusBadRequest},
		{"refused before 100 Continue", "one_way", "POST /a/../b HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lingered := e.metrics.Lingering.WithLabelValues(tc.id, "lingered")
			before := testutil.ToFloat64(lingered)
			c := e.dialListener(t, tc.id)
			req := append([]byte(tc.head+"Content-Length: "+strconv.Itoa(uploadBody)+"\r\n\r\n"), make([]byte, uploadBody)...)
			if _, err := c.Write(req); err != nil {
				t.Fatalf("the upload failed before the client could read the answer: %v", err)
			}
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			readToEnd(t, br) // the half-close comes after the count
			if n := testutil.ToFloat64(lingered) - before; n != 1 {
				t.Fatalf("%v lingering closes counted, want 1", n)
			}
		})
	}
}

// TestRefusedTCPClientGetsAlert: on tcp_ssl, a TLS 1.3 client refused for its
// certificate has already finished the handshake on its side and may be writing: it
// must still read the server's alert rather than fail its write on a reset.
func TestRefusedTCPClientGetsAlert(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	foreign := e.other.Issue("stranger").TLS()
	c, err := tls.Dial("tcp", e.addr("tcpssl"), e.tlsConfig(tls.VersionTLS13, &foreign))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(make([]byte, uploadBody)); err != nil {
		t.Fatalf("the client's write failed before it could read the alert: %v", err)
	}
	_, err = c.Read(make([]byte, 1))
	if _, ok := errors.AsType[tls.AlertError](err); !ok && (err == nil || !strings.Contains(err.Error(), "remote error")) {
		t.Fatalf("read %v, want the server's alert", err)
	}
}

// TestKeepAliveCloseDoesNotLinger: closes where nothing of the client's is left unread
// stay as cheap as before (no goroutine, no wait for the client): the server's close
// after "Connection: close" (following a request with a body, read whole, or on a
// request with a body read whole), and the server's close after the client closed
// first. The client reads the server's end, so
// the server has decided how to close by then (a lingering close is counted before
// its half-close).
func TestKeepAliveCloseDoesNotLinger(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	for _, id := range []string{"one_way", "plain"} {
		t.Run(id, func(t *testing.T) {
			// The server closes after the second request.
			br := ask(t, e.dialListener(t, id), "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello"+
				"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
			for range 2 {
				readAnswer(t, br)
			}
			readToEnd(t, br)
			// A request with a body read whole, behind "Connection: close": nothing is left
			// unread, so no lingering close waits for the client's FIN. The body is read
			// by h1parse's reader (Content-Length), then by net/http's (chunked). Before,
			// any request with a body lingered.
			for _, req := range []string{
				"POST / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello",
				"POST / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
			} {
				br = ask(t, e.dialListener(t, id), req)
				if status := readAnswer(t, br); status != http.StatusOK {
					t.Fatalf("%q: status %d", req, status)
				}
				readToEnd(t, br)
			}
			// The client closes first, after a request with a body.
			c := e.dialListener(t, id)
			br = ask(t, c, "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello")
			readAnswer(t, br)
			if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			readToEnd(t, br)
			for _, result := range []string{"lingered", "over_limit"} {
				if n := testutil.ToFloat64(e.metrics.Lingering.WithLabelValues(id, result)); n != 0 {
					t.Fatalf("%v closes counted as %s, want none", n, result)
				}
			}
		})
	}
}

// ask writes raw to c; the reader returned reads c's answers.
func ask(t *testing.T, c net.Conn, raw string) *bufio.Reader {
	t.Helper()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	return bufio.NewReader(c)
}

// readAnswer reads one response from br whole and returns its status.
func readAnswer(t *testing.T, br *bufio.Reader) int {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// pipelined is n bytes of GET requests a pipelining client sends behind the ones it
// waits for.
func pipelined(n int) []byte {
	req := []byte("GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n")
	return bytes.Repeat(req, n/len(req)+1)
}

// TestCloseWithPipelinedRequestsGetsAnswers: a connection that closes while requests
// the client pipelined behind it are unread (after "Connection: close", after a
// response the backend broke off, which ends the handler with a panic) lingers, as
// nginx does when there may be unread client data, so that the client reads the
// answers sent before the close instead of a reset. Before, those closes were at once:
// the client, still writing, met a reset (its write failed, or its read after).
func TestCloseWithPipelinedRequestsGetsAnswers(t *testing.T) {
	addr := proxytest.Raw(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if req.URL.Path == "/broken" { // a chunked body broken off
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
				return
			}
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
				return
			}
		}
	})
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		e.groups = fmt.Sprintf("  - {id: pipe, targets: [{address: %s}]}\n", addr)
		return "", "  - {id: piped, protocol: https, listen: 127.0.0.1:0, target_group: pipe,\n" +
			"     ssl: {mode: one_way, server_certificates: [site]}}\n" +
			"  - {id: piped_plain, protocol: http, listen: 127.0.0.1:0, target_group: pipe}\n"
	})
	for _, tc := range []struct {
		name, head string
		broken     bool // the last response is broken off
	}{
		{"Connection: close", "GET /ok HTTP/1.1\r\nHost: localhost\r\n\r\nGET /ok HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", false},
		{"after a panic", "GET /ok HTTP/1.1\r\nHost: localhost\r\n\r\nGET /broken HTTP/1.1\r\nHost: localhost\r\n\r\n", true},
	} {
		for _, id := range []string{"piped", "piped_plain"} {
			t.Run(tc.name+"/"+id, func(t *testing.T) {
				lingered := e.metrics.Lingering.WithLabelValues(id, "lingered")
				before := testutil.ToFloat64(lingered)
				var c net.Conn
				if id == "piped_plain" {
					c = dialPlain(t, e.addr(id))
				} else {
					c = e.dialListener(t, id)
				}
				if _, err := c.Write(append([]byte(tc.head), pipelined(uploadBody)...)); err != nil {
					t.Fatalf("the client's writes failed before it could read the answers: %v", err)
				}
				br := bufio.NewReader(c)
				for i := range 2 {
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						t.Fatalf("response %d: %v", i+1, err)
					}
					b, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					switch {
					case i == 1 && tc.broken:
						if err == nil || string(b) != "hello" {
							t.Fatalf("response %d: body %q, %v; want hello broken off", i+1, b, err)
						}
					case err != nil || string(b) != "ok":
						t.Fatalf("response %d: body %q, %v; want ok", i+1, b, err)
					}
				}
				readToEnd(t, br)
				if n := testutil.ToFloat64(lingered) - before; n != 1 {
					t.Fatalf("%v lingering closes counted, want 1", n)
				}
			})
		}
	}
}

// dialPlain connects to a plain HTTP listener's address.
func dialPlain(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	return c
}
