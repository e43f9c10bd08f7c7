package server_test

import (
	"crypto/tls"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"tlsgate/internal/pki"
)

// cachedListener is an extra: a mutual https listener with ssl.verify_cache.
func cachedListener(*env) (string, string) {
	return "", "  - {id: cached, protocol: https, listen: 127.0.0.1:0, target_group: web, ssl: {mode: mutual, server_certificates: [site], ca_certificate: clients, verify_cache: 100}}\n"
}

// TestVerifyCacheMetric: tlsgate_client_verify_cache_total counts the listener's cache
// lookups: a client's first handshake is a miss, its next a hit; a revoked client is
// refused and a miss each time (only chains whose whole pipeline passed are kept). A
// listener without the cache counts nothing.
func TestVerifyCacheMetric(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256, cachedListener)
	hits := e.metrics.VerifyCache.WithLabelValues("cached", "hit")
	misses := e.metrics.VerifyCache.WithLabelValues("cached", "miss")
	count := func() (float64, float64) { return testutil.ToFloat64(hits), testutil.ToFloat64(misses) }
	h0, m0 := count()
	alice := e.ca.Issue("alice").TLS()
	for i := range 2 {
		got, err := e.get("cached", tls.VersionTLS13, &alice, nil, false)
		if err != nil || got.Headers["X-Client-Verify"] != "SUCCESS" {
			t.Fatalf("connection %d: %+v, %v", i+1, got, err)
		}
	}
	if h, m := count(); h-h0 != 1 || m-m0 != 1 {
		t.Fatalf("after two connections of one client: %v hits, %v misses; want 1 and 1", h-h0, m-m0)
	}
	for range 2 {
		if got, err := e.get("cached", tls.VersionTLS13, new(e.revoked.TLS()), nil, false); err == nil {
			t.Fatalf("a revoked client was served: %+v", got)
		}
	}
	if h, m := count(); h-h0 != 1 || m-m0 != 3 {
		t.Fatalf("after two refused connections: %v hits, %v misses; want 1 and 3", h-h0, m-m0)
	}
	if _, err := e.get("mutual", tls.VersionTLS13, &alice, nil, false); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(e.metrics.VerifyCache); n != 2 {
		t.Fatalf("%d series, want the cached listener's hit and miss only", n)
	}
}
