package server_test

import (
	"crypto/tls"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
)

// audited is an extra: mutual listeners trusting the env's CA that try, without
// enforcing them, a bundle of the env's and the other CA with an allow-list of alice
// (audited) and a bundle of the other CA alone (audited_strict).
func audited(e *env) (string, string) {
	pkitest.Write(e.t, e.dir, "next.crt", append(e.ca.PEM(), e.other.PEM()...))
	pkitest.Write(e.t, e.dir, "foreign.crt", e.other.PEM())
	return "  - {id: next, ca: next.crt}\n  - {id: foreign, ca: foreign.crt}\n",
		"  - {id: audited, protocol: https, listen: 127.0.0.1:0, target_group: web, ssl: {mode: mutual, server_certificates: [site], ca_certificate: clients, audit: {ca_certificate: next, allow: {cn: [alice]}}}}\n" +
			"  - {id: audited_strict, protocol: https, listen: 127.0.0.1:0, target_group: web, ssl: {mode: mutual, server_certificates: [site], ca_certificate: clients, audit: {ca_certificate: foreign}}}\n"
}

// TestAudit: ssl.audit reports, in the log line and a metric, what another CA bundle
// and allow-list would decide for every client let in, and changes nothing: each
// client is served (or refused) as the listener's own settings say.
func TestAudit(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256, audited)
	alice, bob := e.ca.Issue("alice"), e.ca.Issue("bob")
	for _, tc := range []struct {
		listener string
		leaf     *pkitest.Leaf
		audit    string
	}{
		{"audited", alice, "ok"},
		{"audited", bob, "not_allowed"},
		{"audited_strict", alice, "unknown_ca"},
	} {
		t.Run(tc.listener+"/"+tc.leaf.Cert.Subject.CommonName, func(t *testing.T) {
			e.t = t
			counter := e.metrics.Audit.WithLabelValues(tc.listener, tc.audit)
			before := testutil.ToFloat64(counter)
			got, err := e.get(tc.listener, tls.VersionTLS13, new(tc.leaf.TLS()), nil, false)
			if err != nil || got.Headers["X-Client-Verify"] != "SUCCESS" {
				t.Fatalf("the audit changed the decision: %+v, %v", got, err)
			}
			line := e.sink.Next(t, map[string]any{"msg": "request", "listener": tc.listener})
			if line["audit"] != tc.audit {
				t.Fatalf("audit %v, want %s (line %v)", line["audit"], tc.audit, line)
			}
			if n := testutil.ToFloat64(counter) - before; n != 1 {
				t.Fatalf("audit{reason=%s} grew by %v", tc.audit, n)
			}
		})
	}
	t.Run("refused as before", func(t *testing.T) {
		e.t = t
		if _, err := e.get("audited", tls.VersionTLS13, new(e.other.Issue("eve").TLS()), nil, false); err == nil {
			t.Fatal("a client of the audited bundle only was let in")
		}
	})
}
