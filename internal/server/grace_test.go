package server_test

import (
	"crypto/tls"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"tlsgate/internal/clientauth"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
)

// graced is an extra: mutual and optional https listeners with a 48h expiry grace.
func graced(*env) (string, string) {
	return "", "  - {id: graced, protocol: https, listen: 127.0.0.1:0, target_group: web, ssl: {mode: mutual, server_certificates: [site], ca_certificate: clients, expiry_grace: 48h}}\n" +
		"  - {id: graced_optional, protocol: https, listen: 127.0.0.1:0, target_group: web, ssl: {mode: optional, server_certificates: [site], ca_certificate: clients, expiry_grace: 48h}}\n"
}

// TestExpiryGrace: with expiry_grace a client certificate up to that long past its
// NotAfter is served, flagged to the backend (X-Client-Cert-Grace), in the log line
// and in a metric; one past the grace, not yet valid, or revoked is refused with its
// reason as without a grace; a listener without one refuses every expired certificate.
func TestExpiryGrace(t *testing.T) {
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			e := newEnv(t, pki.ECDSAP256, graced)
			expiredRevoked := e.ca.Issue("gone", pkitest.Valid(-72*time.Hour, -24*time.Hour))
			e.writeFile("ca.crl", e.ca.CRL(24*time.Hour, e.revoked.Cert, expiredRevoked.Cert))
			if err := e.waitReload(); err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				name   string
				leaf   *pkitest.Leaf
				reason clientauth.Reason
				grace  bool
			}{
				{"valid", e.ca.Issue("alice"), clientauth.OK, false},
				{"expired a day ago", e.ca.Issue("late", pkitest.Valid(-72*time.Hour, -24*time.Hour)), clientauth.OK, true},
				{"expired a day ago, via intermediate", e.inter.Issue("later", pkitest.Valid(-72*time.Hour, -24*time.Hour)), clientauth.OK, true},
				{"expired three days ago", e.ca.Issue("old", pkitest.Valid(-96*time.Hour, -72*time.Hour)), clientauth.Expired, false},
				{"not yet valid", e.ca.Issue("early", pkitest.Valid(time.Hour, 48*time.Hour)), clientauth.NotYetValid, false},
				{"expired a day ago and revoked", expiredRevoked, clientauth.Revoked, false},
				{"expired a day ago, another CA", e.other.Issue("eve", pkitest.Valid(-72*time.Hour, -24*time.Hour)), clientauth.UnknownCA, false},
			} {
				t.Run(tc.name, func(t *testing.T) {
					e.t = t
					counter := e.metrics.ClientGrace.WithLabelValues("graced")
					before := testutil.ToFloat64(counter)
					got, err := e.get("graced", version, new(tc.leaf.TLS()), http.Header{"X-Client-Cert-Grace": {"true"}}, false)
					if tc.reason != clientauth.OK {
						if err == nil {
							t.Fatalf("served: %+v", got)
						}
						line := e.sink.Next(t, map[string]any{"msg": "handshake", "listener": "graced"})
						if line["reason"] != string(tc.reason) {
							t.Fatalf("reason %v, want %s", line["reason"], tc.reason)
						}
					} else {
						if err != nil || got.Headers["X-Client-Verify"] != "SUCCESS" {
							t.Fatalf("refused: %+v, %v", got, err)
						}
						if _, flagged := got.Headers["X-Client-Cert-Grace"]; flagged != tc.grace {
							t.Fatalf("X-Client-Cert-Grace present = %v, want %v (headers %v)", flagged, tc.grace, got.Headers)
						}
						line := e.sink.Next(t, map[string]any{"msg": "request", "listener": "graced"})
						if (line["client_grace"] == true) != tc.grace {
							t.Fatalf("log line %v: client_grace want %v", line, tc.grace)
						}
						if n := testutil.ToFloat64(counter) - before; (n == 1) != tc.grace {
							t.Fatalf("grace counter grew by %v", n)
						}
					}
					got, err = e.get("graced_optional", version, new(tc.leaf.TLS()), nil, false)
					want := "SUCCESS"
					if tc.reason != clientauth.OK {
						want = "FAILED:" + string(tc.reason)
					}
					if err != nil || got.Headers["X-Client-Verify"] != want {
						t.Fatalf("optional: %+v, %v; want %s", got, err, want)
					}
					if _, flagged := got.Headers["X-Client-Cert-Grace"]; flagged != tc.grace {
						t.Fatalf("optional: X-Client-Cert-Grace present = %v, want %v", flagged, tc.grace)
					}
				})
			}
			t.Run("no grace on the mutual listener", func(t *testing.T) {
				e.t = t
				if _, err := e.get("mutual", version, new(e.ca.Issue("late", pkitest.Valid(-72*time.Hour, -24*time.Hour)).TLS()), nil, false); err == nil {
					t.Fatal("an expired certificate was served without a grace")
				}
			})
		})
	}
}
