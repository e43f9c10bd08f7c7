package httpproxy_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"testing"

	"tlsgate/internal/httpproxy"
	"tlsgate/internal/proxytest"
)

// TestResponseHeaderNotCarriedOver: a backend connection's responses share one header
// map (the fast path fills it, the proxy empties it after each): a field of one
// response must not reach the client with the next one on the same connection.
func TestResponseHeaderNotCarriedOver(t *testing.T) {
	addr := proxytest.Raw(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for i := 0; ; i++ {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			_, _ = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Only-%d: %d\r\n\r\nok", i, i)
		}
	})
	url := front(t, httpproxy.Route{Target: addr})
	c := &http.Client{}
	for i := range 3 {
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		for j := range 3 {
			if got := resp.Header.Get(fmt.Sprintf("X-Only-%d", j)); (got != "") != (j == i) {
				t.Fatalf("response %d: X-Only-%d is %q; header %v", i, j, got, resp.Header)
			}
		}
	}
}

// TestResponseHeadLent: with the caller's storage for the response heads (Route.Head,
// as the listener lends its writer's), each response's fields reach the client with
// their own values, request after request on one backend connection.
func TestResponseHeadLent(t *testing.T) {
	addr := proxytest.Raw(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for i := 0; ; i++ {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			_, _ = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Seq: %d%d%d\r\nX-Only-%d: %d\r\n\r\nok", i, i, i, i, i)
		}
	})
	url := front(t, httpproxy.Route{Target: addr, Head: make([]byte, 1024)})
	c := &http.Client{}
	for i := range 3 {
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if got, want := resp.Header.Get("X-Seq"), fmt.Sprintf("%d%d%d", i, i, i); got != want {
			t.Fatalf("response %d: X-Seq %q, want %q; header %v", i, got, want, resp.Header)
		}
		if got := resp.Header.Get(fmt.Sprintf("X-Only-%d", i)); got != fmt.Sprint(i) {
			t.Fatalf("response %d: X-Only-%d is %q", i, i, got)
		}
	}
}
