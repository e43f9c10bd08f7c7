package listener

import (
	"crypto/tls"
	"net/http"
	"strings"

	"tlsgate/internal/backend"
	"tlsgate/internal/clientauth"
	"tlsgate/internal/h2proxy"
	"tlsgate/internal/httpproxy"
)

// forwardH2 sends a request to a target of a group of protocol h2c or h2. A target that
// cannot be connected to is reported to the group (next) and the request moved to
// another, up to the group's retries, as httpproxy does for HTTP/1.1 groups; the
// target that served it, or was tried last, ends in route.Picked and route.Target.
func (l *Listener) forwardH2(w http.ResponseWriter, r *http.Request, t *backend.Target, route *httpproxy.Route, next func(*backend.Target, error) *backend.Target) {
	hr := &h2proxy.Route{
		Target:          t.Address,
		TLS:             t.TLS, // with the target's server name
		Identity:        route.Identity,
		Err:             route.Err,
		Ctx:             route.Ctx,
		ConnectTimeout:  route.Group.Policy.ConnectTimeout,
		ResponseTimeout: route.Group.Policy.ResponseTimeout,
		IdleTimeout:     route.Group.Policy.IdleTimeout,
		MaxIdle:         route.Group.Policy.MaxIdlePerTarget,
		Next: func(err error) (string, *tls.Config, bool) {
			nt := next(route.Picked, err)
			if nt == nil {
				return "", nil, false
			}
			route.Picked, route.Target = nt, nt.Address
			return nt.Address, nt.TLS, true
		},
	}
	// Deferred: Serve panics to abort a response broken off (not gRPC).
	defer func() { route.Connected, route.Header = hr.Connected, hr.Header }()
	l.h2up.Serve(w, r, hr)
}

// refuseGRPC answers a gRPC call the gateway refuses with its gRPC status instead of an
// HTTP error page, which a gRPC client would only report as an unexpected HTTP status;
// it reports whether r was gRPC.
func refuseGRPC(w http.ResponseWriter, r *http.Request, code h2proxy.GRPCCode, msg string) bool {
	if !h2proxy.IsGRPC(r) {
		return false
	}
	h2proxy.WriteStatus(w, code, msg)
	return true
}

// refuseUnverified is refusal: http for a gRPC call: UNAUTHENTICATED with the reason
// code first in grpc-message.
func refuseUnverified(w http.ResponseWriter, r *http.Request, v clientauth.Verdict) bool {
	reason := v.Reason
	if reason == clientauth.OK { // a verified chain is the only pass
		reason = clientauth.NoClientCert
	}
	return refuseGRPC(w, r, h2proxy.GRPCUnauthenticated, "tlsgate: "+string(reason)+": "+reason.Text())
}

// refuseRule answers a gRPC call a rule's allow-list refuses: PERMISSION_DENIED
// (not_allowed) for a verified client, UNAUTHENTICATED for one without a verified
// certificate.
func refuseRule(w http.ResponseWriter, r *http.Request, path string, v clientauth.Verdict) bool {
	if !v.Verified() {
		return refuseUnverified(w, r, v)
	}
	return refuseGRPC(w, r, h2proxy.GRPCPermissionDenied,
		"tlsgate: "+string(clientauth.NotAllowed)+": "+path+" needs a client certificate on its allow-list")
}

// grpcStatus records the gRPC status a gRPC call was answered with, from the backend or
// from the gateway, in the log line and the metric.
func (l *Listener) grpcStatus(line *Line, w *statusWriter, r *http.Request) {
	if !h2proxy.IsGRPC(r) {
		return
	}
	line.GRPCStatus = h2proxy.StatusOf(w.Header())
	if _, h1 := w.ResponseWriter.(*h1writer); h1 {
		// A view of the writer's response head (responseHead), which its next request
		// overwrites; the metric below keeps its label values.
		line.GRPCStatus = strings.Clone(line.GRPCStatus)
	}
	if line.GRPCStatus == "" {
		line.GRPCStatus = "unknown" // no status reached the client (reset, cut short)
	}
	l.deps.Metrics.GRPCRequests.WithLabelValues(line.Listener, line.GRPCStatus).Inc()
}
