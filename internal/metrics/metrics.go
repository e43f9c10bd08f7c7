// Package metrics holds every Prometheus collector of tlsgate in one struct registered on
// a private registry (no globals), and freezes the metric names. It observes nothing by
// itself: listeners, server and admin call it.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metric names, frozen: dashboards and alerts depend on them.
const (
	NameHandshakes      = "tlsgate_handshakes_total"
	NameConnectionsOpen = "tlsgate_connections_open"
	NameRequests        = "tlsgate_requests_total"
	NameRequestSeconds  = "tlsgate_request_duration_seconds"
	NameBytes           = "tlsgate_bytes_total"
	NameReloads         = "tlsgate_reloads_total"
	NameCertExpiry      = "tlsgate_certificate_expiry_seconds"
	NameBackendUp       = "tlsgate_backend_up"
	NameRefused         = "tlsgate_connections_refused_total"
	NameAcceptErrors    = "tlsgate_accept_errors_total"
	NameLingering       = "tlsgate_lingering_closes_total"
	NameClientExpiry    = "tlsgate_client_certificate_days_to_expiry"
	NameClientGrace     = "tlsgate_client_certificate_grace_total"
	NameAudit           = "tlsgate_audit_verdicts_total"
	NameVerifyCache     = "tlsgate_client_verify_cache_total"
	NameCRLFetches      = "tlsgate_crl_fetches_total"
	NameOCSPFetches     = "tlsgate_ocsp_staple_fetches_total"
	NameGRPCRequests    = "tlsgate_grpc_requests_total"
	NameFleetConnected  = "tlsgate_fleet_connected"
	NameFleetRevision   = "tlsgate_fleet_revision"
	NameFleetApplyErrs  = "tlsgate_fleet_apply_errors_total"

	NameBuildInfo           = "tlsgate_build_info"
	NameCertExpiryTimestamp = "tlsgate_certificate_expiry_timestamp_seconds"
	NameClientExpirySeconds = "tlsgate_client_certificate_expiry_seconds"
	NameHandshakeSeconds    = "tlsgate_handshake_duration_seconds"
	NameUpstreamRequests    = "tlsgate_upstream_requests_total"
	NameUpstreamErrors      = "tlsgate_upstream_errors_total"
	NameUpstreamSeconds     = "tlsgate_upstream_request_duration_seconds"
	NameReloadLastSuccess   = "tlsgate_reload_last_success"
	NameReloadLastTimestamp = "tlsgate_reload_last_success_timestamp_seconds"
)

// Metrics is the set of collectors.
type Metrics struct {
	Registry *prometheus.Registry
	// Handshakes counts TLS handshakes by listener, mode, result (success|failure) and
	// reason ("ok" or a reason code).
	Handshakes *prometheus.CounterVec
	// ConnectionsOpen is the number of open client connections by listener.
	ConnectionsOpen *prometheus.GaugeVec
	// Requests counts HTTP requests by listener and status code.
	Requests *prometheus.CounterVec
	// RequestSeconds is the HTTP request latency by listener.
	RequestSeconds *prometheus.HistogramVec
	// Bytes counts proxied bytes by listener and direction (in|out).
	Bytes *prometheus.CounterVec
	// Reloads counts configuration reloads by result (success|failure).
	Reloads *prometheus.CounterVec
	// CertExpiry is the seconds until each certificate or CRL expires, by id and kind
	// (server|ca|crl).
	CertExpiry *prometheus.GaugeVec
	// BackendUp is 1 for a target that passes its active health checks, else 0.
	BackendUp *prometheus.GaugeVec
	// ClientExpiry is the days until expiry of the client certificates presented, by
	// listener: which clients will start failing soon.
	ClientExpiry *prometheus.HistogramVec
	// CRLFetches counts CRL downloads by CA id and result (updated|unchanged|failure).
	CRLFetches *prometheus.CounterVec
	// OCSPFetches counts OCSP staple refreshes by certificate id and result.
	OCSPFetches *prometheus.CounterVec
	// ClientGrace counts client certificates accepted past their NotAfter by the
	// expiry grace, by listener.
	ClientGrace *prometheus.CounterVec
	// Audit counts what ssl.audit would decide for the clients let in, by listener and
	// reason ("ok" when it would let them in too).
	Audit *prometheus.CounterVec
	// VerifyCache counts lookups in a listener's ssl.verify_cache, by result: hit (the
	// chain built before was taken) or miss (built in full).
	VerifyCache *prometheus.CounterVec
	// Refused counts connections closed at once because of max_connections.
	Refused *prometheus.CounterVec
	// GRPCRequests counts gRPC calls by listener and the grpc-status they got (from
	// the backend or the gateway; "unknown" when none reached the client).
	GRPCRequests *prometheus.CounterVec
	// AcceptErrors counts failed accepts by listener and kind: temporary (backed off,
	// accepting goes on) or fatal (the listener stopped accepting).
	AcceptErrors *prometheus.CounterVec
	// Lingering counts closes of connections whose client may still be sending, by
	// listener and result: lingered (half-closed, input read and dropped for a while,
	// so the client reads the answer) or over_limit (too many lingering already:
	// closed at once).
	Lingering *prometheus.CounterVec
	// FleetConnected is 1 while a fleet node has a live session with etcd, else 0.
	FleetConnected prometheus.Gauge
	// FleetRevision is the fleet revision this node serves.
	FleetRevision prometheus.Gauge
	// FleetApplyErrors counts fleet revisions this node could not apply.
	FleetApplyErrors prometheus.Counter

	// BuildInfo is 1, labelled with the version, VCS revision and Go version.
	BuildInfo *prometheus.GaugeVec
	// CertExpiryTimestamp is when each certificate expires or CRL is next updated, as a
	// Unix time (the cert-manager/blackbox convention: alert on it minus time()).
	CertExpiryTimestamp *prometheus.GaugeVec
	// ClientExpirySeconds is the seconds until expiry of the client certificates
	// presented, by listener (ClientExpiry in days, for dashboards that use it).
	ClientExpirySeconds *prometheus.HistogramVec
	// HandshakeSeconds is how long TLS handshakes took, by listener and result.
	HandshakeSeconds *prometheus.HistogramVec
	// UpstreamRequests counts HTTP requests forwarded to a target, by group, target
	// and the status code the client got.
	UpstreamRequests *prometheus.CounterVec
	// UpstreamErrors counts requests a target could not serve (refused, reset, timed
	// out, cut short), by group and target.
	UpstreamErrors *prometheus.CounterVec
	// UpstreamSeconds is how long a target took to serve a request, response body
	// included, by group and target.
	UpstreamSeconds *prometheus.HistogramVec
	// ReloadLastSuccess is 1 when the last reload (or admin API change) succeeded,
	// 0 when it failed and the previous configuration keeps serving.
	ReloadLastSuccess prometheus.Gauge
	// ReloadLastTimestamp is when the configuration was last loaded successfully
	// (start, reload or admin API change), as a Unix time.
	ReloadLastTimestamp prometheus.Gauge
}

// New creates the collectors on a new private registry.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameHandshakes,
			Help: "TLS handshakes by listener, mode, result and reason code."}, []string{"listener", "mode", "result", "reason"}),
		ConnectionsOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: NameConnectionsOpen,
			Help: "Open client connections."}, []string{"listener"}),
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameRequests,
			Help: "HTTP requests by listener and status code."}, []string{"listener", "code"}),
		RequestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: NameRequestSeconds,
			Help: "HTTP request latency.", Buckets: prometheus.DefBuckets}, []string{"listener"}),
		Bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameBytes,
			Help: "Bytes proxied by direction: in (client to backend), out (backend to client)."}, []string{"listener", "direction"}),
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameReloads,
			Help: "Configuration reloads by result."}, []string{"result"}),
		CertExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: NameCertExpiry,
			Help: "Seconds until a certificate or CRL (next update) expires."}, []string{"id", "kind", "subject"}),
		BackendUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: NameBackendUp,
			Help: "1 when a target passes its active health checks, 0 when not."}, []string{"group", "target"}),
		ClientExpiry: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: NameClientExpiry,
			Help:    "Days until the presented client certificates expire (negative: expired).",
			Buckets: []float64{0, 1, 7, 14, 30, 60, 90, 180, 365, 730}}, []string{"listener"}),
		CRLFetches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameCRLFetches,
			Help: "CRL downloads by CA bundle id and result."}, []string{"id", "result"}),
		OCSPFetches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameOCSPFetches,
			Help: "OCSP staple refreshes by certificate id and result."}, []string{"id", "result"}),
		ClientGrace: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameClientGrace,
			Help: "Client certificates accepted past their NotAfter by the listener's expiry_grace."}, []string{"listener"}),
		Audit: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameAudit,
			Help: "What ssl.audit (a CA bundle and allow-list tried without enforcing them) would decide for the client certificates let in."}, []string{"listener", "reason"}),
		VerifyCache: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameVerifyCache,
			Help: "Lookups in ssl.verify_cache by result: hit (the client chain built before was taken; revocation, denylist and allow-list still checked) or miss (the chain built in full)."}, []string{"listener", "result"}),
		Refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameRefused,
			Help: "Connections refused because the listener's max_connections was reached."}, []string{"listener"}),
		GRPCRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameGRPCRequests,
			Help: "gRPC calls by listener and grpc-status."}, []string{"listener", "grpc_status"}),
		AcceptErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameAcceptErrors,
			Help: "Failed accepts by listener and kind: temporary (out of file descriptors and the like; backed off, accepting goes on) or fatal (the listener stopped accepting)."}, []string{"listener", "kind"}),
		Lingering: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameLingering,
			Help: "Closes of connections whose client may still be sending, by result: lingered (input read and dropped until the client closes, within bounds) or over_limit (too many lingering: closed at once)."}, []string{"listener", "result"}),
		FleetConnected: prometheus.NewGauge(prometheus.GaugeOpts{Name: NameFleetConnected,
			Help: "1 while this fleet node has a live session with etcd, else 0."}),
		FleetRevision: prometheus.NewGauge(prometheus.GaugeOpts{Name: NameFleetRevision,
			Help: "The fleet revision this node serves."}),
		FleetApplyErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: NameFleetApplyErrs,
			Help: "Fleet revisions this node could not apply (it keeps serving the previous one)."}),
	}
	m.Registry.MustRegister(m.FleetConnected, m.FleetRevision, m.FleetApplyErrors)
	m.addOperational()
	m.Registry.MustRegister(m.Handshakes, m.ConnectionsOpen, m.Requests, m.RequestSeconds, m.Bytes, m.Reloads, m.CertExpiry, m.BackendUp, m.Refused, m.ClientExpiry, m.CRLFetches, m.OCSPFetches, m.ClientGrace, m.Audit)
	m.Registry.MustRegister(m.VerifyCache, m.GRPCRequests, m.AcceptErrors, m.Lingering)
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}
