package httpproxy_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"tlsgate/internal/httpproxy"
	"tlsgate/internal/proxytest"
)

// front serves plain HTTP on loopback and proxies every request to route.
func front(t *testing.T, route httpproxy.Route) string {
	t.Helper()
	p := httpproxy.New(nil)
	t.Cleanup(p.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt := route
		p.Serve(w, r, &rt)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestForwardReplacesStaleConnection: a backend that reads a second request on a kept
// connection and closes it without an answer (it was closing the idle connection as
// the request came) makes a GET go again on a new connection; a POST whose body was
// sent is not sent again (it may have been processed): 502, and the backend saw it once.
func TestForwardReplacesStaleConnection(t *testing.T) {
	var accepted, posts atomic.Int32
	addr := proxytest.Raw(t, func(c net.Conn) {
		accepted.Add(1)
		br := bufio.NewReader(c)
		for i := 0; ; i++ {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if b, _ := io.ReadAll(r.Body); string(b) == "once" {
				posts.Add(1)
			}
			if i == 1 {
				return // the second request on a connection: closed unanswered
			}
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	url := front(t, httpproxy.Route{Target: addr})
	c := &http.Client{}
	for i := range 3 {
		if code, body := get(t, c, url); code != http.StatusOK || body != "ok" {
			t.Fatalf("GET %d: %d %q, want 200 ok", i, code, body)
		}
	}
	if n := accepted.Load(); n != 3 {
		t.Fatalf("backend accepted %d connections for 3 GETs, want 3 (a new one for each closed one)", n)
	}
	resp, err := c.Post(url, "text/plain", strings.NewReader("once"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || posts.Load() != 1 {
		t.Fatalf("POST on a connection closed unanswered: %d, backend saw it %d times; want 502 and once (a body is never sent twice)", resp.StatusCode, posts.Load())
	}
}

// TestForwardBackendClosesMidBody: a backend that closes without an answer while the
// client is still sending its body is the backend's failure, 502, whatever the cut of
// the client's body read that follows does. Before, the proxy blamed that cut on the
// client: 400 "reading the request body", or 503 when net/http ended the request's
// context on it (TestForwardReplacesStaleConnection's POST saw 503 about 1 in 60 runs
// under load).
func TestForwardBackendClosesMidBody(t *testing.T) {
	addr := proxytest.Raw(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		r, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.ReadFull(r.Body, make([]byte, 4)) // the first bytes, then close
	})
	url := front(t, httpproxy.Route{Target: addr})
	pr, pw := io.Pipe()
	defer pw.Close()
	// 40 KiB, more than the proxy buffers before it writes to the backend, and the rest
	// never comes: the proxy's body writer waits on the client when the backend closes.
	go func() { _, _ = pw.Write(make([]byte, 40<<10)) }()
	resp, err := http.Post(url, "text/plain", pr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("backend closed mid-body: %d, want 502", resp.StatusCode)
	}
}

// TestForwardStreamsBody: what a client has sent of a body it streams reaches the
// backend at once, not when 4 KiB have gathered or the body ends. The backend answers
// after the first 5 bytes while the rest has not come; before, those bytes waited in
// the proxy's buffer, and the request in the backend, until the response timeout.
func TestForwardStreamsBody(t *testing.T) {
	addr := proxytest.Raw(t, func(c net.Conn) {
		r, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		got := make([]byte, 5)
		if _, err := io.ReadFull(r.Body, got); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"+string(got))
	})
	url := front(t, httpproxy.Route{Target: addr})
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = pw.Write([]byte("hello")) }() // and the rest has not come yet
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Post(url, "text/plain", pr)
	if err != nil {
		t.Fatalf("a streamed body's first bytes did not reach the backend: %v", err)
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK || string(b) != "hello" {
		t.Fatalf("streamed body: %d %q, want 200 hello", resp.StatusCode, b)
	}
}

// idleCloser is a keep-alive backend that answers each request "ok" and closes a
// connection idle for keep, as gunicorn and Node do, then sends on closed; accepted
// counts its connections.
func idleCloser(t *testing.T, keep time.Duration) (addr string, closed <-chan struct{}, accepted *atomic.Int32) {
	t.Helper()
	ch := make(chan struct{}, 16)
	accepted = new(atomic.Int32)
	addr = proxytest.Raw(t, func(c net.Conn) {
		accepted.Add(1)
		br := bufio.NewReader(c)
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, r.Body)
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			_ = c.SetReadDeadline(time.Now().Add(keep))
			if _, err := br.Peek(1); err != nil {
				_ = c.Close()
				ch <- struct{}{}
				return
			}
			_ = c.SetReadDeadline(time.Time{})
		}
	})
	return addr, ch, accepted
}

// TestForwardIdleClosedPOSTs (issue 12 item 3): a backend that closes idle keep-alive
// connections (gunicorn, Node) leaves them in the pool; a POST must never be sent on
// one. Each POST below waits for the backend to have closed the previous connection.
// Before: 5 of 10 POSTs got 502.
func TestForwardIdleClosedPOSTs(t *testing.T) {
	addr, closed, _ := idleCloser(t, 50*time.Millisecond) // gunicorn: 2 s
	url := front(t, httpproxy.Route{Target: addr})
	c := &http.Client{}
	failed := 0
	for range 10 {
		resp, err := c.Post(url, "text/plain", strings.NewReader("payload"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			failed++ // sent on a closed connection: no new one to wait for
			continue
		}
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatal("the backend did not close the idle connection")
		}
	}
	if failed != 0 {
		t.Fatalf("%d of 10 POSTs failed on connections the backend had closed, want 0", failed)
	}
}

// TestForwardIdleClosedGETs: GETs and bodiless DELETEs take a connection used
// within the last second without the idle check (pool.uncheckedFor); when the backend
// closed it meanwhile (10 ms after its response, the close's edge long spent), the
// request meets the reset before any response byte and goes again on a new
// connection: every request is answered, none hangs, none is 502.
func TestForwardIdleClosedGETs(t *testing.T) {
	addr, closed, accepted := idleCloser(t, 10*time.Millisecond)
	url := front(t, httpproxy.Route{Target: addr})
	c := &http.Client{}
	for i := range 10 {
		method := http.MethodGet
		if i%2 == 1 {
			method = http.MethodDelete
		}
		req, _ := http.NewRequest(method, url, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %d on a connection the backend closed: %d, want 200 (sent again)", method, i, resp.StatusCode)
		}
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatal("the backend did not close the idle connection")
		}
	}
	// Each request after the first met a closed connection and went again on a new
	// one: 10 connections in all.
	if n := accepted.Load(); n != 10 {
		t.Fatalf("backend accepted %d connections for 10 requests", n)
	}
}

// TestForwardBytesPastResponse: a backend that sends more than its response (a second
// response no request asked for, in the same write) does not have those bytes served
// as the next request's answer: the connection is closed, and the next request gets
// its own answer on a new one. Before, the next GET got "evil".
func TestForwardBytesPastResponse(t *testing.T) {
	var accepted atomic.Int32
	addr := proxytest.Raw(t, func(c net.Conn) {
		first := accepted.Add(1) == 1
		br := bufio.NewReader(c)
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			answer := "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfine"
			if first {
				answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"
			}
			if _, err := io.WriteString(c, answer); err != nil {
				return
			}
		}
	})
	url := front(t, httpproxy.Route{Target: addr})
	c := &http.Client{}
	if code, body := get(t, c, url); code != http.StatusOK || body != "ok" {
		t.Fatalf("first GET: %d %q, want 200 ok", code, body)
	}
	if code, body := get(t, c, url); code != http.StatusOK || body != "fine" {
		t.Fatalf("second GET: %d %q, want 200 fine (its own answer, not the bytes past the first response)", code, body)
	}
}

// TestForwardKeepsReadResponses: a response read to its end, whatever its framing
// (length, chunked with trailers, none for HEAD, 204 and 304), leaves nothing in the
// connection's reader, and the connection is kept: every request goes on one.
func TestForwardKeepsReadResponses(t *testing.T) {
	var accepted atomic.Int32
	answers := []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", // to a HEAD
		"HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 304 Not Modified\r\n\r\n",
	}
	addr := proxytest.Raw(t, func(c net.Conn) {
		accepted.Add(1)
		br := bufio.NewReader(c)
		for i := 0; ; i++ {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			if _, err := io.WriteString(c, answers[i%len(answers)]); err != nil {
				return
			}
		}
	})
	url := front(t, httpproxy.Route{Target: addr})
	c := &http.Client{}
	for i := range answers {
		method := http.MethodGet
		if i == 3 {
			method = http.MethodHead
		}
		req, _ := http.NewRequest(method, url, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if n := accepted.Load(); n != 1 {
		t.Fatalf("backend accepted %d connections for %d requests, want 1 (each response read to its end keeps it)", n, len(answers))
	}
}

// TestForwardFraming: the backend gets the body framed anew, chunked when the client's
// length was unknown, and never the client's own framing or hop-by-hop headers.
func TestForwardFraming(t *testing.T) {
	type seen struct {
		te     []string
		length int64
		body   string
		header http.Header
	}
	got := make(chan seen, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.TransferEncoding, r.ContentLength, string(b), r.Header.Clone()}
	}))
	defer backend.Close()
	url := front(t, httpproxy.Route{Target: backend.Listener.Addr().String(), Identity: http.Header{"X-Client-Verify": {"SUCCESS"}}})

	// Unknown length: the Go client sends it chunked.
	resp, err := http.Post(url, "text/plain", io.MultiReader(strings.NewReader("hel"), strings.NewReader("lo")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if s := <-got; len(s.te) != 1 || s.te[0] != "chunked" || s.body != "hello" {
		t.Fatalf("chunked body: backend saw TE %v, body %q", s.te, s.body)
	}

	// Raw: hop-by-hop headers, a Connection-listed header, forged X-Forwarded and
	// identity headers, and an h2c upgrade.
	u := strings.TrimPrefix(url, "http://")
	c, err := net.Dial("tcp", u)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "POST /p HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5\r\n"+
		"Connection: keep-alive, X-Drop, Upgrade, HTTP2-Settings\r\nX-Drop: 1\r\nKeep-Alive: timeout=5\r\n"+
		"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\nX-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\n"+
		"X-Client-Verify: FORGED\r\nX_Client_Verify: FORGED\r\nX-Keep: yes\r\n\r\nhello")
	resp, err = http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	s := <-got
	if s.length != 5 || s.body != "hello" || len(s.te) != 0 {
		t.Fatalf("sized body: backend saw length %d, TE %v, body %q", s.length, s.te, s.body)
	}
	for _, h := range []string{"X-Drop", "Keep-Alive", "Upgrade", "Http2-Settings", "Forwarded", "X_client_verify"} {
		if v, ok := s.header[h]; ok {
			t.Errorf("backend got %s: %q, want it removed", h, v)
		}
	}
	want := map[string]string{"X-Keep": "yes", "X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": "example.test",
		"X-Forwarded-Proto": "http", "X-Client-Verify": "SUCCESS"}
	for h, v := range want {
		if got := s.header[h]; len(got) != 1 || got[0] != v {
			t.Errorf("backend got %s: %q, want [%q]", h, got, v)
		}
	}
}

// TestForwardStreams: a response of unknown length reaches the client as the backend
// writes it (server-sent events), not when it ends.
func TestForwardStreams(t *testing.T) {
	release := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: 1\n\n")
		_ = http.NewResponseController(w).Flush()
		<-release
		_, _ = io.WriteString(w, "data: 2\n\n")
	}))
	defer backend.Close()
	defer close(release)
	resp, err := http.Get(front(t, httpproxy.Route{Target: backend.Listener.Addr().String()}))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: 1\n" {
		t.Fatalf("first event: %q, %v", line, err)
	}
}

// TestForwardTrailers: trailers of a chunked response reach the client.
func TestForwardTrailers(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		_, _ = io.WriteString(w, "body")
		w.Header().Set("X-Checksum", "abc")
	}))
	defer backend.Close()
	resp, err := http.Get(front(t, httpproxy.Route{Target: backend.Listener.Addr().String()}))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if got := resp.Trailer.Get("X-Checksum"); got != "abc" {
		t.Fatalf("trailer X-Checksum = %q, want abc", got)
	}
}

// TestForwardRefusesUnwritableRequest: a request whose header cannot be written to
// HTTP/1.1 as it is (CR/LF in a value, as an HTTP/2 front could hand over) is refused
// with 400 and nothing reaches the backend.
func TestForwardRefusesUnwritableRequest(t *testing.T) {
	received := make(chan int64, 8)
	addr := proxytest.Raw(t, func(c net.Conn) {
		n, _ := io.Copy(io.Discard, c)
		received <- n
	})
	p := httpproxy.New(nil)
	for name, mod := range map[string]func(r *http.Request){
		"value":  func(r *http.Request) { r.Header["X-A"] = []string{"a\r\nX-Client-Verify: SUCCESS"} },
		"name":   func(r *http.Request) { r.Header["X-A: b\r\nX"] = []string{"c"} },
		"target": func(r *http.Request) { r.RequestURI = "/ HTTP/1.1\r\nX: y" },
		"host":   func(r *http.Request) { r.Host = "h\r\nX-Client-Verify: SUCCESS" },
	} {
		r := httptest.NewRequest(http.MethodGet, "http://example.test/", nil)
		mod(r)
		var routeErr error
		w := httptest.NewRecorder()
		p.Serve(w, r, &httpproxy.Route{Target: addr, Err: func(err error) { routeErr = err }})
		if w.Code != http.StatusBadRequest || routeErr == nil {
			t.Errorf("%s: status %d, route error %v; want 400 and an error", name, w.Code, routeErr)
		}
	}
	p.Close()
	for range 4 { // one connection per request, closed once the request was refused
		if n := <-received; n != 0 {
			t.Fatalf("backend received %d bytes, want none", n)
		}
	}
}
