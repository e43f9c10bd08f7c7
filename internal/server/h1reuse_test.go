package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"tlsgate/internal/pki"
)

// TestH1RequestHeaderNotCarriedOver: the header maps of requests the fast path reads
// are reused once a request is served: a field of one request must not reach the
// backend with the next request on the connection (or on another one).
func TestH1RequestHeaderNotCarriedOver(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	h := dialH1(t, e, "one_way")
	reqs := []string{
		"GET /1 HTTP/1.1\r\nHost: localhost\r\nX-One: 1\r\nX-Two: 2\r\n\r\n",
		"GET /2 HTTP/1.1\r\nHost: localhost\r\n\r\n",
		"GET /3 HTTP/1.1\r\nHost: localhost\r\nX-Three: 3\r\n\r\n",
	}
	for i, raw := range reqs {
		h.send(raw)
		got := h.read(http.MethodGet)
		if got.status != http.StatusOK {
			t.Fatalf("request %d: status %d", i+1, got.status)
		}
		for k, want := range map[string]bool{"X-One": i == 0, "X-Two": i == 0, "X-Three": i == 2} {
			if _, ok := got.Headers[k]; ok != want {
				t.Fatalf("request %d: the backend saw %s: %v, want %v (%v)", i+1, k, ok, want, got.Headers)
			}
		}
	}
}

// TestH1ResponseHeadReused: a writer's storage for the proxied response's head is reused
// by the run's next request, and handed on to the next writer after a request with a
// body: each response must arrive with its own fields (the Content-Length of its own
// body, its own echo), requests with and without bodies mixed on one connection.
func TestH1ResponseHeadReused(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	h := dialH1(t, e, "one_way")
	paths := []string{"/a", "/" + strings.Repeat("b", 40), "/cc", "/" + strings.Repeat("d", 300), "/e", "/ff"}
	for i, p := range paths {
		method, body := "GET", ""
		if i%2 == 1 {
			method, body = "POST", strings.Repeat("x", 10*i)
		}
		h.send(method + " " + p + " HTTP/1.1\r\nHost: localhost\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
		resp, err := http.ReadResponse(h.br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(b)) {
			t.Fatalf("request %d: Content-Length %q for a body of %d bytes", i+1, cl, len(b))
		}
		var got struct {
			Method string `json:"method"`
			Path   string `json:"path"`
			Body   int64  `json:"body_bytes"`
		}
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("request %d: %v in %q", i+1, err, b)
		}
		if got.Method != method || got.Path != p || got.Body != int64(len(body)) {
			t.Fatalf("request %d: the answer is for %s %s with %d body bytes, want %s %s with %d", i+1, got.Method, got.Path, got.Body, method, p, len(body))
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("request %d: Content-Type %q", i+1, ct)
		}
	}
}
