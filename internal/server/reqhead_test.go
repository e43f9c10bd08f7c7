package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"tlsgate/internal/pki"
	"tlsgate/internal/porttest"
)

// headCase is one request of TestH1RequestHeadLent and what must come of it.
type headCase struct {
	method, host, uri, path, ua, cookie, field string
	body                                       string
	pad                                        int // bytes of an extra field: a head longer than the run's storage
}

func (c headCase) raw() string {
	s := c.method + " " + c.uri + " HTTP/1.1\r\nHost: " + c.host + "\r\nUser-Agent: " + c.ua + "\r\nCookie: " + c.cookie +
		"\r\nX-Field: " + c.field + "\r\n"
	if c.pad > 0 {
		s += "X-Pad: " + strings.Repeat("p", c.pad) + "\r\n"
	}
	if c.body != "" {
		s += fmt.Sprintf("Content-Length: %d\r\n", len(c.body))
	}
	return s + "\r\n" + c.body
}

// headCases are a connection's requests: each with its own method, target, Host, user
// agent, cookie and field, heads shorter and longer than the storage, bodies mixed in.
func headCases(conn int) []headCase {
	var cs []headCase
	methods := []string{"GET", "DELETE", "POST", "OPTIONS", "GET", "PUT", "GET", "PATCH"}
	for i, m := range methods {
		c := headCase{
			method: m, host: fmt.Sprintf("h%d-%d.example", conn, i),
			path: fmt.Sprintf("/c%d/r%d/%s", conn, i, strings.Repeat("x", i*7)),
			ua:   fmt.Sprintf("agent-%d-%d", conn, i), cookie: fmt.Sprintf("k%d=v%d", i, conn),
			field: strings.Repeat(string(rune('a'+i)), 3+i*11),
		}
		c.uri = c.path + fmt.Sprintf("?q=%d", i)
		switch i % 4 {
		case 1:
			c.pad = 1100 // own string
		case 2:
			c.body = strings.Repeat("b", 5+i) // own string: a body
		}
		cs = append(cs, c)
	}
	return cs
}

// TestH1RequestHeadLent: the heads of requests without a body are read into storage that
// a worker's run of requests reuses (h1parse.ReadFast's store, keptBufs.requestHead):
// each request's strings are views of it, overwritten by the next. Every request of a
// kept-alive connection must reach the backend, and its access line, with its own
// method, target, Host, user agent, cookie and field: requests sent one at a time and
// pipelined (two heads in one write), on two connections served at once (storage shared
// by two runs is a data race under -race). The access line is written before the
// response leaves (serveRequest's deferred log runs before serveOne flushes), so it is
// there when the response is read.
func TestH1RequestHeadLent(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	conns := []*h1{dialH1(t, e, "one_way"), dialH1(t, e, "one_way")}
	cases := [][]headCase{headCases(0), headCases(1)}
	for i := 0; i < len(cases[0]); i += 2 {
		for c, h := range conns {
			if i%4 == 0 { // pipelined: two requests in one write
				h.send(cases[c][i].raw() + cases[c][i+1].raw())
				continue
			}
			h.send(cases[c][i].raw())
		}
		for c, h := range conns {
			checkHead(t, e, h, cases[c][i])
			if i%4 != 0 {
				h.send(cases[c][i+1].raw())
			}
			checkHead(t, e, h, cases[c][i+1])
		}
	}
}

// checkHead reads the answer to c on h and checks what the backend and the access line
// saw of it.
func checkHead(t *testing.T, e *env, h *h1, c headCase) {
	t.Helper()
	got := h.read(c.method)
	if got.status != http.StatusOK {
		t.Fatalf("%s %s: status %d", c.method, c.uri, got.status)
	}
	want := []string{c.method, c.host, c.uri, c.ua, c.cookie, c.field}
	seen := []string{got.Method, got.Host, got.Path, got.Headers["User-Agent"], got.Headers["Cookie"], got.Headers["X-Field"]}
	for i := range want {
		if seen[i] != want[i] || got.Body != int64(len(c.body)) {
			t.Fatalf("the backend saw %q with a body of %d bytes, want %q and %d", seen, got.Body, want, len(c.body))
		}
	}
	line := map[string]any{"msg": "request", "method": c.method, "host": c.host, "path": c.path, "user_agent": c.ua, "status": float64(200)}
	if n := e.sink.Count(line); n != 1 {
		t.Fatalf("%d access lines with %v, want 1", n, line)
	}
}

// TestH1RequestHeadRetried: a request whose first target refuses the connect is sent
// again to the other target, within its own turn: the retried request must carry its
// own head (its strings are views of the run's storage, which only the connection's next
// request overwrites), and so must the next one, on the same connection.
func TestH1RequestHeadRetried(t *testing.T) {
	dead := porttest.Dead(t)
	d := &dialCounter{}
	e := newEnv(t, pki.ECDSAP256, withDial(d), func(e *env) (string, string) {
		return groupListeners(fmt.Sprintf("outlier: {base_ejection: 1h}, targets: [{address: %s}, {address: %s}]", dead, e.backend.HTTP.Addr()))(e)
	})
	h := dialH1(t, e, "g_https")
	for i, c := range headCases(0) {
		h.send(c.raw())
		checkHead(t, e, h, c)
		if i == 1 && d.count(dead) == 0 {
			t.Fatal("no request went to the refusing target first: nothing was retried")
		}
	}
}
