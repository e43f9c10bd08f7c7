package listener

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"tlsgate/internal/lazytime"
	"tlsgate/internal/metrics"
)

// The kept children are the registry's: counts through them are the exported series.
func TestMetricSets(t *testing.T) {
	m := metrics.New()
	s := metricSets{m: m}
	for range 2 {
		rs := s.request("web")
		rs.byStatus.get(200).Inc()
		rs.in.Add(10)
	}
	s.request("web").byStatus.get(404).Inc()
	s.upstream("pool", "10.0.0.1:80").byStatus.get(502).Inc()
	s.upstream("pool", "10.0.0.1:80").seconds.Observe(0.1)
	for _, c := range []struct {
		got, want float64
		what      string
	}{
		{testutil.ToFloat64(m.Requests.WithLabelValues("web", "200")), 2, "requests 200"},
		{testutil.ToFloat64(m.Requests.WithLabelValues("web", "404")), 1, "requests 404"},
		{testutil.ToFloat64(m.Bytes.WithLabelValues("web", "in")), 20, "bytes in"},
		{testutil.ToFloat64(m.UpstreamRequests.WithLabelValues("pool", "10.0.0.1:80", "502")), 1, "upstream 502"},
		{float64(testutil.CollectAndCount(m.UpstreamErrors)), 0, "upstream error series (none failed)"},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.what, c.got, c.want)
		}
	}
}

func TestHTTPDate(t *testing.T) {
	now := time.Date(2026, 12, 4, 17, 0, 1, 0, time.FixedZone("x", 3600))
	for _, at := range []time.Time{now, now.Add(500 * time.Millisecond), now.Add(time.Second)} {
		if got, want := httpDate(at), at.UTC().Format(http.TimeFormat); got != want {
			t.Errorf("httpDate(%v) = %q, want %q", at, got, want)
		}
	}
}

// TestDateNow: dateNow is the current second's Date, also after httpDate formatted
// another time (a stamp that says nothing of the monotonic clock), and across seconds.
// A second either way is allowed: the wall clock may be slewed against the monotonic
// one near a second's end.
func TestDateNow(t *testing.T) {
	_ = httpDate(time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC))
	deadline := time.Now().Add(1500 * time.Millisecond) // crosses a second at least once
	for n := 0; time.Now().Before(deadline); n++ {
		before := time.Now().Truncate(time.Second)
		s := dateNow()
		after := time.Now()
		got, err := http.ParseTime(s)
		if err != nil || got.Before(before.Add(-time.Second)) || got.After(after.Add(time.Second)) {
			t.Fatalf("call %d: dateNow() = %q (%v), want the time between %v and %v", n, s, err, before, after)
		}
	}
}

// TestMetricSetsCaches: the last set and the code slots only shortcut the maps: targets
// taking turns, two codes in one slot and codes far apart each count on their own series.
func TestMetricSetsCaches(t *testing.T) {
	m := metrics.New()
	s := metricSets{m: m}
	targets := []string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"}
	codes := []int{200, 231, 200 + 2*31, 499, 999, 200}
	for range 3 {
		for _, target := range targets {
			for _, code := range codes {
				s.upstream("pool", target).byStatus.get(code).Inc()
				s.request("web").byStatus.get(code).Inc()
			}
		}
		s.request("api").byStatus.get(200).Inc()
	}
	for _, target := range targets {
		for code, want := range map[int]float64{200: 6, 231: 3, 262: 3, 499: 3, 999: 3} {
			got := testutil.ToFloat64(m.UpstreamRequests.WithLabelValues("pool", target, strconv.Itoa(code)))
			if got != want {
				t.Errorf("upstream %s %d: %v, want %v", target, code, got, want)
			}
		}
	}
	if got := testutil.ToFloat64(m.Requests.WithLabelValues("web", "200")); got != 18 {
		t.Errorf("web 200: %v, want 18", got)
	}
	if got := testutil.ToFloat64(m.Requests.WithLabelValues("api", "200")); got != 3 {
		t.Errorf("api 200: %v, want 3", got)
	}
}

// TestWallAt: a request line's time is the wall clock's at the request's end reading,
// from the current second's stamp without a clock read of its own: a stamp's time moved
// by the monotonic difference, for readings before and after the stamp's; a reading
// past the stamp's second, or a stamp of httpDate's (no monotonic reading), makes a new
// stamp from the clock. A line with a reading is written at that time.
func TestWallAt(t *testing.T) {
	defer dateCache.Store(nil)
	fake := time.Date(2001, 2, 3, 4, 5, 6, 7000, time.UTC)
	n := lazytime.Now()
	dateCache.Store(&dateStamp{sec: fake.Unix(), end: n + int64(time.Second), text: "x", wall: fake, mono: n - 5000})
	for _, d := range []int64{0, 1, -5000, -20000, int64(time.Second) - 1} {
		if got, want := wallAt(n+d), fake.Add(time.Duration(5000+d)); !got.Equal(want) {
			t.Errorf("wallAt(stamp + %d): %v, want %v (the stamp's time moved)", 5000+d, got, want)
		}
	}
	var b bytes.Buffer
	line := &Line{Msg: "request", Listener: "l", at: n + 1000}
	line.Log(context.Background(), slog.New(slog.NewJSONHandler(&b, nil)))
	if want := `{"time":"2001-02-03T04:05:06.000013Z",`; !strings.HasPrefix(b.String(), want) {
		t.Errorf("a line at the stamp + 6000 ns: %q, want it to begin %q", b.String(), want)
	}

	for _, stale := range []*dateStamp{
		{sec: fake.Unix(), end: n, text: "x", wall: fake, mono: n - 5000}, // its second ended at n
		{sec: fake.Unix(), text: "x"},                                     // httpDate's
		nil,
	} {
		dateCache.Store(stale)
		before := time.Now().Round(0)
		got := wallAt(lazytime.Now()).Round(0)
		after := time.Now().Round(0)
		if got.Before(before) || got.After(after) {
			t.Errorf("stamp %+v: wallAt(now) %v, want the time between %v and %v", stale, got, before, after)
		}
		if d := dateCache.Load(); d == stale || d.end == 0 {
			t.Errorf("stamp %+v: no new stamp made", stale)
		}
	}
	// The stamp's second lasts while the readings do: each line of it is the clock's.
	for range 1000 {
		before := time.Now().Round(0)
		got := wallAt(lazytime.Now()).Round(0)
		after := time.Now().Round(0)
		if got.Before(before.Add(-time.Millisecond)) || got.After(after.Add(time.Millisecond)) {
			t.Fatalf("wallAt(now) %v, want the time between %v and %v", got, before, after)
		}
	}
}
