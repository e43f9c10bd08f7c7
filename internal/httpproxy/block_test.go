package httpproxy

import (
	"bufio"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"tlsgate/internal/h1parse"
)

// TestCopyResponseOwnValues: a backend connection reads its responses into one block
// (h1parse.ReadResponseBlock), so the client's header, still in use after the proxy
// returns (the listener writes and logs it), must not keep slices of the block: the
// connection's next response, for another client, would overwrite them.
func TestCopyResponseOwnValues(t *testing.T) {
	br := bufio.NewReader(strings.NewReader(
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: first\r\nX-B: one\r\nX-B: two\r\n\r\nok" +
			"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: second\r\nX-B: three\r\n\r\nok"))
	var blk h1parse.ResponseBlock
	var route Route
	rec := httptest.NewRecorder()
	resp, err := h1parse.ReadResponseBlock(br, nil, nil, &blk, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := copyResponse(rec, resp, route.vals[:]); !ok || err != nil {
		t.Fatalf("copyResponse: %v %v", ok, err)
	}
	// The connection's next response, into the same block.
	next, err := h1parse.ReadResponseBlock(br, nil, nil, &blk, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, next.Body)
	if got := rec.Header()["X-A"]; len(got) != 1 || got[0] != "first" {
		t.Fatalf("X-A in the client's header is %q after the next response, want [first]", got)
	}
	if got := rec.Header()["X-B"]; len(got) != 2 || got[0] != "one" || got[1] != "two" {
		t.Fatalf("X-B in the client's header is %q after the next response, want [one two]", got)
	}
}
