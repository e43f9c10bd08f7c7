package listener

import (
	"bufio"
	"reflect"
	"strings"
	"testing"

	"tlsgate/internal/h1parse"
)

// TestHeadHeldBeyond: a request something may keep after it was served (heldBeyond: an
// HTTP/2 target's client may still read it) leaves the run's head storage and its header
// map to the GC: the run's next request is read into other storage and another map, and
// the first request's strings and header stay as they were. A request not held leaves
// both to the run's next request.
func TestHeadHeldBeyond(t *testing.T) {
	read := func(h *h1conn, head string) *h1parse.Request {
		t.Helper()
		hdr := h.kept.reqHeader()
		r, _, err := h1parse.ReadFast(bufio.NewReader(strings.NewReader(head)), hdr, h1parse.Limits{}, h.kept.requestHead()[:])
		if err != nil || r == nil || !r.Lent() {
			t.Fatalf("%q: not read into the run's storage (%v)", head, err)
		}
		h.in.lent, h.in.held = true, false
		return r
	}
	const first, second = "GET /first HTTP/1.1\r\nHost: one\r\nUser-Agent: agent-1\r\n\r\n", "GET /2 HTTP/1.1\r\nHost: two\r\nUser-Agent: second-agent\r\n\r\n"
	for _, held := range []bool{true, false} {
		h := &h1conn{}
		r := read(h, first)
		store, hdr := h.kept.requestHead(), r.Header
		path, host, ua := r.URL.Path, r.Host, r.Header["User-Agent"][0]
		if held {
			h.heldBeyond()
		}
		h.doneWith(hdr)
		r2 := read(h, second)
		if reused := h.kept.requestHead() == store; reused == held {
			t.Fatalf("held %v: the next request read into the same storage: %v", held, reused)
		}
		if same := reflect.ValueOf(r2.Header).UnsafePointer() == reflect.ValueOf(hdr).UnsafePointer(); same == held {
			t.Fatalf("held %v: the next request's header map is the first's: %v", held, same)
		}
		if held && (path != "/first" || host != "one" || ua != "agent-1") {
			t.Fatalf("held: the first request's strings became %q %q %q with the next request", path, host, ua)
		}
		if !held && path == "/first" {
			t.Fatalf("not held: the next request was not read into the run's storage (the first's path is still %q)", path)
		}
	}
}
