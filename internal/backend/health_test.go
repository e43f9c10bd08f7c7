package backend_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"tlsgate/internal/backend"
	"tlsgate/internal/config"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
	"tlsgate/internal/porttest"
)

// TestCheckerThresholds runs the checker in a synctest bubble: three failed checks
// mark a target down, two good ones bring it back, on the configured interval.
func TestCheckerThresholds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, noPanic := 1, 0 // without panic mode, so that a target down gets nothing
		g, err := backend.NewGroup(&config.TargetGroup{ID: "g", PanicThreshold: &noPanic, Targets: []config.Target{{Address: "a:1", Weight: &w}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		failing := true
		var changes []bool
		c := &backend.Checker{
			Group: g, Interval: 5 * time.Second, Timeout: time.Second, Rise: 2, Fall: 3,
			Probe: func(context.Context, string) error {
				mu.Lock()
				defer mu.Unlock()
				if failing {
					return errors.New("down")
				}
				return nil
			},
			OnChange: func(_ *backend.Target, healthy bool, _ error) { changes = append(changes, healthy) },
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { c.Run(ctx); close(done) }()
		tg := g.Targets[0]
		synctest.Wait() // check 1 at t=0
		time.Sleep(5 * time.Second)
		synctest.Wait() // check 2
		if !tg.Healthy() {
			t.Fatal("down after 2 failures; threshold is 3")
		}
		time.Sleep(5 * time.Second)
		synctest.Wait() // check 3
		if tg.Healthy() {
			t.Fatal("still up after 3 failures")
		}
		if _, err := g.Pick(""); !errors.Is(err, backend.ErrNoTarget) {
			t.Fatalf("Pick with the only target down: %v", err)
		}
		mu.Lock()
		failing = false
		mu.Unlock()
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if tg.Healthy() {
			t.Fatal("up after 1 success; threshold is 2")
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if !tg.Healthy() || len(changes) != 2 || changes[0] || !changes[1] {
			t.Fatalf("healthy=%v changes=%v", tg.Healthy(), changes)
		}
		cancel()
		<-done
	})
}

// TestProbes runs the real probes against loopback servers.
func TestProbes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bad" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	closed := porttest.Dead(t)
	for _, tc := range []struct {
		name string
		spec backend.ProbeSpec
		addr string
		ok   bool
	}{
		{"tcp up", backend.ProbeSpec{Protocol: "tcp"}, addr, true},
		{"tcp refused", backend.ProbeSpec{Protocol: "tcp"}, closed, false},
		{"http 200", backend.ProbeSpec{Protocol: "http", Path: "/"}, addr, true},
		{"http 503", backend.ProbeSpec{Protocol: "http", Path: "/bad"}, addr, false},
		{"http 503 expected", backend.ProbeSpec{Protocol: "http", Path: "/bad", Expect: []int{503}}, addr, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := backend.Probe(tc.spec)(t.Context(), tc.addr)
			if (err == nil) != tc.ok {
				t.Fatalf("probe: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestHTTPSProbeWithGroupTLS: an https check of a group that re-encrypts handshakes as
// its requests do: it presents the group's client certificate to a backend that
// requires one, and verifies the backend against the group's CA and server name.
func TestHTTPSProbeWithGroupTLS(t *testing.T) {
	backendCA := pkitest.New(t, "backend CA", pki.ECDSAP256)
	clientCA := pkitest.New(t, "origin CA", pki.ECDSAP256)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{backendCA.Issue("backend.internal", pkitest.Server("backend.internal")).TLS()},
		ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: clientCA.Pool(),
	}
	srv.StartTLS()
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	group := func(name string) *tls.Config {
		return &tls.Config{RootCAs: backendCA.Pool(), ServerName: name, Certificates: []tls.Certificate{clientCA.Issue("tlsgate-origin").TLS()}}
	}
	for _, tc := range []struct {
		name string
		tls  *tls.Config
		ok   bool
	}{
		{"without the group's TLS: no client certificate, refused", nil, false},
		{"with the group's TLS", group("backend.internal"), true},
		{"with the group's TLS, another server name", group("other.internal"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := backend.Probe(backend.ProbeSpec{Protocol: "https", Path: "/", TLS: tc.tls})(t.Context(), addr)
			if (err == nil) != tc.ok {
				t.Fatalf("probe: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestCheckerIgnoresLocalShortage (issue 12 item 7): a check that fails because this
// process ran out of file descriptors (EMFILE on socket()) is not counted against the
// target, which stays healthy however long it lasts; a real failure still counts.
func TestCheckerIgnoresLocalShortage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := 1
		g, err := backend.NewGroup(&config.TargetGroup{ID: "g", Targets: []config.Target{{Address: "a:1", Weight: &w}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		probeErr := error(&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("socket", syscall.EMFILE)})
		c := &backend.Checker{
			Group: g, Interval: 5 * time.Second, Timeout: time.Second, Rise: 1, Fall: 2,
			Probe: func(context.Context, string) error {
				mu.Lock()
				defer mu.Unlock()
				return probeErr
			},
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { c.Run(ctx); close(done) }()
		tg := g.Targets[0]
		for range 5 {
			synctest.Wait()
			if !tg.Healthy() {
				t.Fatal("marked down for this process's EMFILE")
			}
			time.Sleep(5 * time.Second)
		}
		// Off the checks' ticks (the loop ended on one, where which of the test and the
		// checker runs first is not fixed): the check of that tick has seen EMFILE.
		time.Sleep(time.Second)
		mu.Lock()
		probeErr = errors.New("status 500")
		mu.Unlock()
		time.Sleep(2 * 5 * time.Second) // two checks, both off the test's instants
		synctest.Wait()
		if tg.Healthy() {
			t.Fatal("still up after 2 real failures")
		}
		cancel()
		<-done
	})
}
