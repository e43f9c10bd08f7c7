package listener

import (
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

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
