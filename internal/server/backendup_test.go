package server_test

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"tlsgate/internal/pki"
)

// TestBackendUpMetric: tlsgate_backend_up{group,target} (issue #6's backend health) is 1
// for a target that passes its active checks and 0 for one that fails them, and follows
// a target that recovers.
func TestBackendUpMetric(t *testing.T) {
	up, down := startNamed(t, "up", nil), startNamed(t, "down", nil)
	down.sick.Store(true)
	e := newEnv(t, pki.ECDSAP256, groupListeners(fmt.Sprintf(
		"health_check: {protocol: http, path: /health, interval: 1s, timeout: 1s, unhealthy_threshold: 2, healthy_threshold: 1}, targets: [{address: %s}, {address: %s}]", up.addr, down.addr)))
	e.sink.Next(t, map[string]any{"msg": "target unhealthy", "target": down.addr})
	gauge := func(addr string) float64 { return testutil.ToFloat64(e.metrics.BackendUp.WithLabelValues("g", addr)) }
	if u, d := gauge(up.addr), gauge(down.addr); u != 1 || d != 0 {
		t.Fatalf("tlsgate_backend_up: healthy target %v, failing target %v; want 1 and 0", u, d)
	}
	down.sick.Store(false)
	e.sink.Next(t, map[string]any{"msg": "target healthy", "target": down.addr})
	if d := gauge(down.addr); d != 1 {
		t.Fatalf("tlsgate_backend_up of the recovered target: %v, want 1", d)
	}
}
