package httpproxy_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"tlsgate/internal/httpproxy"
	"tlsgate/internal/lazytime"
	"tlsgate/internal/porttest"
)

// TestServeClockReadings pins Route's Start and End: the first attempt's Connected and
// Header are timed from the caller's Start when it is set (from Serve's own reading when
// not), and End is a reading taken during Serve once the response was copied, zero when
// there was no response from the backend.
func TestServeClockReadings(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(backend.Close)
	addr := backend.Listener.Addr().String()
	p := httpproxy.New(nil)
	t.Cleanup(p.Close)
	serve := func(route *httpproxy.Route) (status int, before, after int64) {
		t.Helper()
		rec := httptest.NewRecorder()
		before = lazytime.Now()
		p.Serve(rec, httptest.NewRequest(http.MethodGet, "http://front/", nil), route)
		return rec.Code, before, lazytime.Now()
	}

	// An hour ago, as the caller's reading: both durations count from it.
	r := &httpproxy.Route{Target: addr, Start: lazytime.Now() - int64(time.Hour)}
	status, before, after := serve(r)
	if status != http.StatusOK {
		t.Fatalf("status %d, want 200", status)
	}
	if r.Connected < time.Hour || r.Header < r.Connected {
		t.Errorf("Connected %v, Header %v: want both timed from Start (≥ 1h), Header ≥ Connected", r.Connected, r.Header)
	}
	if r.End < before || r.End > after {
		t.Errorf("End %d outside Serve's call [%d, %d]", r.End, before, after)
	}

	// No Start: Serve reads the clock itself (the pooled connection comes at once).
	r = &httpproxy.Route{Target: addr}
	if status, before, after = serve(r); status != http.StatusOK {
		t.Fatalf("status %d, want 200", status)
	}
	if r.Connected >= time.Hour || r.Header < r.Connected || r.Header > time.Duration(after-before) {
		t.Errorf("Connected %v, Header %v: want Serve's own timing (within its %v)", r.Connected, r.Header, time.Duration(after-before))
	}
	if r.End < before || r.End > after {
		t.Errorf("End %d outside Serve's call [%d, %d]", r.End, before, after)
	}

	// A target that refuses: no response, no End.
	dead := porttest.Dead(t)
	r = &httpproxy.Route{Target: dead, Start: lazytime.Now()}
	if status, _, _ = serve(r); status != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", status)
	}
	if r.End != 0 {
		t.Errorf("End %d after a failed exchange, want 0", r.End)
	}
}
