package metrics

import (
	"runtime"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Buckets of the histograms added for operators (issue 14).
var (
	// handshakeBuckets span a local TLS 1.3 handshake (~1 ms) to the handshake timeout.
	handshakeBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	// expiryBuckets are seconds: expired, 1 day, 1 week, 2 weeks, 30, 60, 90, 180, 365, 730 days.
	expiryBuckets = []float64{0, 86400, 7 * 86400, 14 * 86400, 30 * 86400, 60 * 86400, 90 * 86400, 180 * 86400, 365 * 86400, 730 * 86400}
)

// addOperational creates and registers what every Prometheus shop expects beside the
// TLS metrics: the Go and process collectors, build info, absolute expiry times,
// handshake and upstream latency, per-target errors, and the last reload's outcome.
func (m *Metrics) addOperational() {
	m.BuildInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: NameBuildInfo,
		Help: "Always 1; the labels name the running build."}, []string{"version", "revision", "goversion"})
	m.CertExpiryTimestamp = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: NameCertExpiryTimestamp,
		Help: "When a certificate expires or a CRL is next updated, as a Unix time."}, []string{"id", "kind", "subject"})
	m.ClientExpirySeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: NameClientExpirySeconds,
		Help:    "Seconds until the presented client certificates expire (negative: expired).",
		Buckets: expiryBuckets}, []string{"listener"})
	m.HandshakeSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: NameHandshakeSeconds,
		Help: "TLS handshake duration by listener and result.", Buckets: handshakeBuckets}, []string{"listener", "result"})
	m.UpstreamRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameUpstreamRequests,
		Help: "HTTP requests forwarded to a target, by group, target and status code."}, []string{"group", "target", "code"})
	m.UpstreamErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameUpstreamErrors,
		Help: "Requests a target could not serve (refused, reset, timed out, cut short)."}, []string{"group", "target"})
	m.UpstreamSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: NameUpstreamSeconds,
		Help: "Time a target took to serve a request, response body included.", Buckets: prometheus.DefBuckets}, []string{"group", "target"})
	m.ReloadLastSuccess = prometheus.NewGauge(prometheus.GaugeOpts{Name: NameReloadLastSuccess,
		Help: "1 when the last configuration load (start, reload, admin API change) succeeded, 0 when it failed."})
	m.ReloadLastTimestamp = prometheus.NewGauge(prometheus.GaugeOpts{Name: NameReloadLastTimestamp,
		Help: "When the configuration was last loaded successfully, as a Unix time."})
	m.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.BuildInfo, m.CertExpiryTimestamp, m.ClientExpirySeconds, m.HandshakeSeconds,
		m.UpstreamRequests, m.UpstreamErrors, m.UpstreamSeconds, m.ReloadLastSuccess, m.ReloadLastTimestamp,
	)
	version, revision := "(devel)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	m.SetBuild(version, revision)
	// Both outcomes exist from the start, so rate() and increase() see the first one.
	m.Reloads.WithLabelValues("success")
	m.Reloads.WithLabelValues("failure")
}

// SetBuild labels tlsgate_build_info (the cli passes the version stamped at link time).
func (m *Metrics) SetBuild(version, revision string) {
	m.BuildInfo.Reset()
	m.BuildInfo.WithLabelValues(version, revision, runtime.Version()).Set(1)
}

// Reloaded records the outcome of a configuration load at now.
func (m *Metrics) Reloaded(ok bool, now time.Time) {
	if !ok {
		m.ReloadLastSuccess.Set(0)
		return
	}
	m.ReloadLastSuccess.Set(1)
	m.ReloadLastTimestamp.Set(float64(now.UnixNano()) / 1e9)
}
