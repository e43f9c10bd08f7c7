package server_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/net/http2"

	"tlsgate/internal/config"
	"tlsgate/internal/pki"
	"tlsgate/internal/porttest"
	"tlsgate/internal/proxytest"
)

// named is an HTTP backend answering its name; /health answers 500 while sick.
type named struct {
	name string
	addr string
	hits atomic.Int32
	sick atomic.Bool
}

func startNamed(t *testing.T, name string, ln net.Listener) *named {
	t.Helper()
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	n := &named{name: name, addr: ln.Addr().String()}
	srv := &http.Server{Handler: n}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return n
}

// startNamedH2C is startNamed speaking HTTP/2 in clear only (prior knowledge), as the
// targets of a group of protocol h2c.
func startNamedH2C(t *testing.T, name string) *named {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &named{name: name, addr: ln.Addr().String()}
	p := &http.Protocols{}
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: n, Protocols: p}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return n
}

func (n *named) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/health" {
		if n.sick.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
		return
	}
	n.hits.Add(1)
	_, _ = io.WriteString(w, n.name)
}

// groupListeners is an extra with target group "g" (YAML body after "id: g, ") and an
// https listener "g_https" and a tcp_ssl listener "g_tcp" on it.
func groupListeners(group string) extra {
	return func(e *env) (string, string) {
		e.groups += "  - {id: g, " + group + "}\n"
		return "", "  - {id: g_https, protocol: https, listen: 127.0.0.1:0, target_group: g,\n" +
			"     ssl: {mode: one_way, server_certificates: [site]}}\n" +
			"  - {id: g_tcp, protocol: tcp_ssl, listen: 127.0.0.1:0, target_group: g,\n" +
			"     ssl: {mode: one_way, server_certificates: [site]}}\n"
	}
}

// statuses makes n requests to listener id on new connections and counts the statuses
// (0 for a request that failed without one).
func (e *env) statuses(id string, n int) map[int]int {
	e.t.Helper()
	out := map[int]int{}
	for range n {
		resp, _, err := e.request(id, e.tlsConfig(tls.VersionTLS13, nil), nil, false)
		if err != nil {
			out[0]++
			continue
		}
		out[resp.StatusCode]++
	}
	return out
}

// dialCounter counts the dials to each address; a dial to an address in hang blocks
// until its context ends (a black hole: SYNs dropped).
type dialCounter struct {
	mu    sync.Mutex
	dials map[string]int
	hang  map[string]bool
	fail  map[string]error // returned instead of dialling
}

func (d *dialCounter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.dials[addr]++
	hang, fail := d.hang[addr], d.fail[addr]
	d.mu.Unlock()
	if fail != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: fail}
	}
	if hang {
		<-ctx.Done()
	}
	return (&net.Dialer{}).DialContext(ctx, network, addr)
}

func (d *dialCounter) count(addr string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dials[addr]
}

func withDial(d *dialCounter) extra {
	return func(e *env) (string, string) {
		d.dials = map[string]int{}
		e.dial = d.dial
		return "", ""
	}
}

// TestLateBackendSingleTarget (issue 12 item 1): the only target of a group refuses
// until its backend starts; from then on every request is served (before: one refusal
// took it out for 10 s, 503 for everyone).
func TestLateBackendSingleTarget(t *testing.T) {
	dead := porttest.Reserve(t)
	addr := dead.Addr
	e := newEnv(t, pki.ECDSAP256, groupListeners(fmt.Sprintf("targets: [{address: %s}]", addr)))
	before := e.statuses("g_https", 3)
	if before[http.StatusBadGateway] != 3 {
		t.Fatalf("before the backend started: %v, want 3 × 502", before)
	}
	startNamed(t, "late", dead.Listen(t))
	if after := e.statuses("g_https", 10); after[http.StatusOK] != 10 {
		t.Fatalf("after the backend started: %v, want 10 × 200", after)
	}
}

// TestLateBackendTwoTargets: with one target refusing, requests and TCP SSL
// connections go to the other (retries), none fails; once the late backend starts and
// its ejection ends, it gets work again.
func TestLateBackendTwoTargets(t *testing.T) {
	dead := porttest.Reserve(t)
	addr := dead.Addr
	live := startNamed(t, "live", nil)
	d := &dialCounter{}
	e := newEnv(t, pki.ECDSAP256, withDial(d),
		groupListeners(fmt.Sprintf("outlier: {base_ejection: 50ms}, targets: [{address: %s}, {address: %s}]", addr, live.addr)))
	if got := e.statuses("g_https", 20); got[http.StatusOK] != 20 {
		t.Fatalf("one target refusing: %v, want 20 × 200", got)
	}
	// 5 refusals in a row eject it (then 50 ms); the requests after those went straight to live.
	if n := d.count(addr); n < 5 {
		t.Fatalf("the refusing target was dialled %d times, want at least 5", n)
	}
	late := startNamed(t, "late", dead.Listen(t))
	for late.hits.Load() == 0 {
		if got := e.statuses("g_https", 5); got[http.StatusOK] != 5 {
			t.Fatalf("after the late backend started: %v, want 5 × 200", got)
		}
	}
}

// TestDeadTargetCounts: with one of two targets refusing, 20 requests all succeed and
// the dead target is tried exactly consecutive_failures (5) times, then ejected
// (before: 1 of the 20 answered 502).
func TestDeadTargetCounts(t *testing.T) {
	dead := porttest.Dead(t)
	live := startNamed(t, "live", nil)
	d := &dialCounter{}
	e := newEnv(t, pki.ECDSAP256, withDial(d), groupListeners(fmt.Sprintf("outlier: {base_ejection: 1h}, targets: [{address: %s}, {address: %s}]", dead, live.addr)))
	if got := e.statuses("g_https", 20); got[http.StatusOK] != 20 {
		t.Fatalf("statuses %v, want 20 × 200", got)
	}
	if n := d.count(dead); n != 5 {
		t.Fatalf("the dead target was dialled %d times, want 5 (then ejected)", n)
	}
	if n := live.hits.Load(); n != 20 {
		t.Fatalf("the live target served %d requests, want 20", n)
	}
	for _, g := range e.srv.Status().TargetGroups {
		for _, tg := range g.Targets {
			if g.ID == "g" && tg.Address == dead && tg.Health != "ejected" {
				t.Fatalf("status shows the dead target %q, want ejected", tg.Health)
			}
		}
	}
}

// TestH2CDeadTargetRetried (issue 12 item 1, for a group of protocol h2c): with one of
// two targets refusing or black-holed, 20 requests all succeed, the failed connect
// going to the other target (before: 5 × 502), and the bad target is dialled exactly 5
// times, then ejected; a black hole costs each of those the group's connect_timeout
// (before: a fixed 10 s each).
func TestH2CDeadTargetRetried(t *testing.T) {
	for _, hang := range []bool{false, true} {
		t.Run(map[bool]string{false: "refused", true: "black hole"}[hang], func(t *testing.T) {
			dead := porttest.Dead(t)
			live := startNamedH2C(t, "live")
			d := &dialCounter{hang: map[string]bool{dead: hang}}
			e := newEnv(t, pki.ECDSAP256, withDial(d), groupListeners(fmt.Sprintf(
				"protocol: h2c, connect_timeout: 100ms, outlier: {base_ejection: 1h}, targets: [{address: %s}, {address: %s}]", dead, live.addr)))
			start := time.Now()
			if got := e.statuses("g_https", 20); got[http.StatusOK] != 20 {
				t.Fatalf("statuses %v, want 20 × 200", got)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("20 requests took %v: connect_timeout 100ms not applied", took)
			}
			if n := d.count(dead); n != 5 {
				t.Fatalf("the bad target was dialled %d times, want 5 (then ejected)", n)
			}
			if n := live.hits.Load(); n != 20 {
				t.Fatalf("the live target served %d requests, want 20", n)
			}
		})
	}
}

// TestBlackHoleConnect: a target whose connects hang (SYNs dropped) costs each request
// one connect_timeout, then the request goes to the other target; after 5 such
// timeouts it is ejected.
func TestBlackHoleConnect(t *testing.T) {
	hole := porttest.Dead(t)
	live := startNamed(t, "live", nil)
	d := &dialCounter{hang: map[string]bool{hole: true}}
	e := newEnv(t, pki.ECDSAP256, withDial(d),
		groupListeners(fmt.Sprintf("connect_timeout: 100ms, outlier: {base_ejection: 1h}, targets: [{address: %s}, {address: %s}]", hole, live.addr)))
	if got := e.statuses("g_https", 20); got[http.StatusOK] != 20 {
		t.Fatalf("statuses %v, want 20 × 200", got)
	}
	if n := d.count(hole); n != 5 {
		t.Fatalf("the black hole was dialled %d times, want 5 (then ejected)", n)
	}
}

// TestBlackHoleResponse (issue 12 item 4): a target that accepts and never answers
// costs a request response_timeout (504, not sent again: it may have been processed),
// and 5 such timeouts eject it: exactly 5 of 20 requests fail (before: each waited 60 s).
// For a group of protocol h2c the same holds (before: each request to the hole hung
// until the client gave up), but the hole gets one connection: HTTP/2 streams share it.
func TestBlackHoleResponse(t *testing.T) {
	for _, protocol := range []string{"http1", "h2c"} {
		t.Run(protocol, func(t *testing.T) {
			var seen atomic.Int32
			hole := proxytest.Raw(t, func(c net.Conn) {
				seen.Add(1)
				_, _ = io.Copy(io.Discard, c) // reads, never answers
			})
			live := startNamed(t, "live", nil)
			if protocol == "h2c" {
				live = startNamedH2C(t, "live")
			}
			e := newEnv(t, pki.ECDSAP256, groupListeners(fmt.Sprintf(
				"protocol: %s, response_timeout: 200ms, outlier: {base_ejection: 1h}, targets: [{address: %s}, {address: %s}]", protocol, hole, live.addr)))
			got := e.statuses("g_https", 20)
			if got[http.StatusGatewayTimeout] != 5 || got[http.StatusOK] != 15 {
				t.Fatalf("statuses %v, want 5 × 504 then 15 × 200", got)
			}
			if n, want := seen.Load(), map[string]int32{"http1": 5, "h2c": 1}[protocol]; n != want {
				t.Fatalf("the black hole got %d connections, want %d", n, want)
			}
		})
	}
}

// TestPanicModeServes: when every target fails its health check, requests still go to
// them (panic mode, as Envoy and ALB do) instead of 503 for everyone.
func TestPanicModeServes(t *testing.T) {
	a, b := startNamed(t, "a", nil), startNamed(t, "b", nil)
	a.sick.Store(true)
	b.sick.Store(true)
	e := newEnv(t, pki.ECDSAP256, groupListeners(fmt.Sprintf(
		"health_check: {protocol: http, path: /health, interval: 1h, timeout: 1s, unhealthy_threshold: 1}, targets: [{address: %s}, {address: %s}]", a.addr, b.addr)))
	e.sink.Next(t, map[string]any{"msg": "target unhealthy"})
	e.sink.Next(t, map[string]any{"msg": "target unhealthy"})
	if got := e.statuses("g_https", 4); got[http.StatusOK] != 4 {
		t.Fatalf("every target down: %v, want 4 × 200 (panic mode)", got)
	}
	if a.hits.Load() != 2 || b.hits.Load() != 2 {
		t.Fatalf("hits a=%d b=%d, want 2 each", a.hits.Load(), b.hits.Load())
	}
}

// TestHealthAcrossReloads (issue 12 item 2): a target the active check marked down
// stays down across a reload (SIGHUP's path) and an admin API change to an unrelated
// group; it used to come back up and get half the requests until checked again.
func TestHealthAcrossReloads(t *testing.T) {
	up, down := startNamed(t, "up", nil), startNamed(t, "down", nil)
	down.sick.Store(true)
	e := newEnv(t, pki.ECDSAP256, groupListeners(fmt.Sprintf(
		"health_check: {protocol: http, path: /health, interval: 1s, timeout: 1s, unhealthy_threshold: 2}, targets: [{address: %s}, {address: %s}]", up.addr, down.addr)))
	e.sink.Next(t, map[string]any{"msg": "target unhealthy", "target": down.addr})
	check := func(when string) {
		t.Helper()
		if got := e.statuses("g_https", 10); got[http.StatusOK] != 10 {
			t.Fatalf("%s: %v, want 10 × 200", when, got)
		}
		if n := down.hits.Load(); n != 0 {
			t.Fatalf("%s: the target marked down got %d of 10 requests", when, n)
		}
	}
	check("before any reload")
	if err := e.srv.Reload(); err != nil {
		t.Fatal(err)
	}
	check("after a reload")
	if _, err := e.srv.Update(func(c *config.Config) error {
		for i := range c.TargetGroups {
			if c.TargetGroups[i].ID == "echo" {
				c.TargetGroups[i].Scheduler = config.SchedLeastConn
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	check("after an admin API change to another group")
}

// TestRelayRetried: a TCP SSL connection whose first target refuses is relayed to the
// other target (before: 1 in 2 dropped until the mark).
func TestRelayRetried(t *testing.T) {
	dead := porttest.Dead(t)
	echo := proxytest.Raw(t, func(c net.Conn) { _, _ = io.Copy(c, c) })
	e := newEnv(t, pki.ECDSAP256, groupListeners(fmt.Sprintf("targets: [{address: %s}, {address: %s}]", dead, echo)))
	for i := range 10 {
		c, err := tls.Dial("tcp", e.addr("g_tcp"), e.tlsConfig(tls.VersionTLS13, nil))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, "ping")
		buf := make([]byte, 4)
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("connection %d: %q, %v: want the echo", i, buf, err)
		}
		c.Close()
	}
}

// slowBackend holds every request until the request's context ends, and tells the
// test when a request arrived and when the backend saw it cancelled.
func slowBackend(t *testing.T) (addr string, got, cancelled chan struct{}) {
	t.Helper()
	got, cancelled = make(chan struct{}, 4), make(chan struct{}, 4)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &http.Protocols{} // HTTP/1.1, and HTTP/2 in clear for groups of protocol h2c
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Protocols: p, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- struct{}{}
		select {
		case <-r.Context().Done():
			cancelled <- struct{}{}
		case <-time.After(30 * time.Second):
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), got, cancelled
}

func wait(t *testing.T, ch chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not within 10 s", what)
	}
}

// TestClientAbort (issue 12 item 5): a client that leaves while its request is with
// the backend ends the backend exchange at once (the backend sees its request
// cancelled), and the request is logged as 499 "client closed request", over HTTP/1
// and HTTP/2 (before: HTTP/1 kept the exchange until the backend answered and logged
// 200; HTTP/2 logged 504 i/o timeout).
func TestClientAbort(t *testing.T) {
	for _, protocol := range []string{"http1", "h2c"} {
		t.Run(protocol, func(t *testing.T) { clientAbort(t, protocol) })
	}
}

// clientAbort is TestClientAbort for a group of protocol (h2c: the 499 was logged as
// 502 "context canceled" and counted as the target's error).
func clientAbort(t *testing.T, protocol string) {
	addr, got, cancelled := slowBackend(t)
	e := newEnv(t, pki.ECDSAP256, groupListeners(fmt.Sprintf("protocol: %s, targets: [{address: %s}]", protocol, addr)))
	t.Run("HTTP/1.1", func(t *testing.T) {
		cfg := e.tlsConfig(tls.VersionTLS13, nil)
		cfg.NextProtos = []string{"http/1.1"}
		c, err := tls.Dial("tcp", e.addr("g_https"), cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n")
		wait(t, got, "request at the backend")
		c.Close()
		wait(t, cancelled, "backend exchange cancelled")
		e.sink.Next(t, map[string]any{"msg": "request", "listener": "g_https", "status": float64(499), "error": "client closed request"})
	})
	t.Run("HTTP/2", func(t *testing.T) {
		h := dialH2(t, e, "g_https")
		h.headers(t, 1, "/slow")
		wait(t, got, "request at the backend")
		if err := h.WriteRSTStream(1, http2.ErrCodeCancel); err != nil {
			t.Fatal(err)
		}
		wait(t, cancelled, "backend exchange cancelled")
		e.sink.Next(t, map[string]any{"msg": "request", "listener": "g_https", "status": float64(499), "error": "client closed request"})
	})
	if n := testutil.ToFloat64(e.metrics.UpstreamErrors.WithLabelValues("g", addr)); n != 0 {
		t.Fatalf("tlsgate_upstream_errors_total = %v for the clients' aborts, want 0", n)
	}
	for code, want := range map[string]float64{"499": 2, "502": 0, "504": 0} {
		if n := testutil.ToFloat64(e.metrics.Requests.WithLabelValues("g_https", code)); n != want {
			t.Errorf("tlsgate_requests_total{code=%q} = %v, want %v", code, n, want)
		}
	}
}

// TestLocalDialErrorNotCharged (issue 12 item 7): tlsgate's own "socket: too many open
// files" on a dial is not the target's failure: after 10 of them the target is not
// ejected and serves as soon as the dials work again. For groups of protocol http1 and
// h2c (whose connect failures are reported to outlier detection too).
func TestLocalDialErrorNotCharged(t *testing.T) {
	for _, protocol := range []string{"http1", "h2c"} {
		t.Run(protocol, func(t *testing.T) {
			start := func(name string) *named { return startNamed(t, name, nil) }
			if protocol == "h2c" {
				start = func(name string) *named { return startNamedH2C(t, name) }
			}
			a, b := start("a"), start("b")
			d := &dialCounter{}
			e := newEnv(t, pki.ECDSAP256, withDial(d), groupListeners(fmt.Sprintf("protocol: %s, targets: [{address: %s}, {address: %s}]", protocol, a.addr, b.addr)))
			d.mu.Lock()
			d.fail = map[string]error{a.addr: os.NewSyscallError("socket", syscall.EMFILE)}
			d.mu.Unlock()
			if got := e.statuses("g_https", 20); got[http.StatusOK] != 20 {
				t.Fatalf("with EMFILE on a's dials: %v, want 20 × 200 (retried on b)", got)
			}
			if n := d.count(a.addr); n != 10 {
				t.Fatalf("a was dialled %d times, want 10 (every other request: never ejected)", n)
			}
			d.mu.Lock()
			d.fail = nil
			d.mu.Unlock()
			if got := e.statuses("g_https", 4); got[http.StatusOK] != 4 || a.hits.Load() != 2 {
				t.Fatalf("after: %v, a served %d of 4, want 2", got, a.hits.Load())
			}
		})
	}
}
