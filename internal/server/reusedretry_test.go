package server_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"tlsgate/internal/pki"
	"tlsgate/internal/proxytest"
)

// TestReusedFailureGoesToAnotherTarget (issue 12's retries: "a failed connect, or a
// reused connection that failed before any response byte, goes to another available
// target"): target a answers one request on its first connection, then closes every
// connection on its next request without an answer (a process going down). The request
// that meets the close on the reused connection goes to target b: 4 × 200 with two
// targets (before: it went again on a new connection to a, which closed that too: 502).
func TestReusedFailureGoesToAnotherTarget(t *testing.T) {
	var conns, answered atomic.Int32
	a := proxytest.Raw(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		if conns.Add(1) == 1 {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			answered.Add(1)
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na")
		}
		_, _ = http.ReadRequest(br) // the next request: closed unanswered
	})
	b := startNamed(t, "b", nil)
	e := newEnv(t, pki.ECDSAP256, groupListeners(fmt.Sprintf("targets: [{address: %s}, {address: %s}]", a, b.addr)))
	if got := e.statuses("g_https", 4); got[http.StatusOK] != 4 {
		t.Fatalf("statuses %v, want 4 × 200", got)
	}
	if answered.Load() != 1 || b.hits.Load() != 3 {
		t.Fatalf("a answered %d, b %d; want 1 and 3", answered.Load(), b.hits.Load())
	}
}
