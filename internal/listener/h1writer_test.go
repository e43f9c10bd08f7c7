package listener

import (
	"errors"
	"testing"

	"tlsgate/internal/httpproxy"
)

// TestUpstreamErrReused: an HTTP/1 writer keeps its proxy Err function for the run's
// next request; each call must reach the current request's line and failure flag, not
// those of the request the function was made for, and a client that left is not the
// upstream's failure. No allocation per request.
func TestUpstreamErrReused(t *testing.T) {
	w := new(h1writer)
	var line1, line2 Line
	var failed1, failed2 bool
	boom := errors.New("backend unreachable")
	upstreamErr(w, &line1, &failed1)(boom)
	if line1.Err != boom || !failed1 {
		t.Fatalf("first request: line err %v failed %v", line1.Err, failed1)
	}
	upstreamErr(w, &line2, &failed2)(httpproxy.ErrClientClosed)
	if line2.Err != httpproxy.ErrClientClosed || failed2 {
		t.Fatalf("second request: line err %v failed %v, want ErrClientClosed, not failed", line2.Err, failed2)
	}
	if line1.Err != boom {
		t.Fatalf("the second request's error reached the first's line: %v", line1.Err)
	}
	if n := testing.AllocsPerRun(100, func() { _ = upstreamErr(w, &line2, &failed2) }); n != 0 {
		t.Fatalf("%v allocations per request's Err, want 0", n)
	}
}
