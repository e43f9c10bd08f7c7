package server_test

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
)

// TestCRLFetchFromBundleCDP: with crl_fetch_cdp the CRL distribution points the CA
// bundle's certificates name are fetched and applied (issue #6: CRLs from the CDPs of
// the CA bundle's certificates): the root's CRL, named only by the bundle intermediate's
// CDP, revoking alice refuses her after the fetch, and revoking the intermediate refuses
// bob, its client, though his chain ends at the intermediate (a bundle certificate).
func TestCRLFetchFromBundleCDP(t *testing.T) {
	var served atomic.Pointer[[]byte]
	responder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(*served.Load())
	}))
	defer responder.Close()
	var alice, bob *pkitest.Leaf
	var inter *pkitest.CA
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		inter = e.ca.Intermediate("cdp intermediate", pkitest.CRLURL(responder.URL+"/root.crl"))
		alice, bob = e.ca.Issue("alice"), inter.Issue("bob")
		served.Store(new(e.ca.CRL(24 * time.Hour)))
		pkitest.Write(t, e.dir, "cdp-bundle.crt", append(e.ca.PEM(), inter.PEM()...))
		pkitest.Write(t, e.dir, "cdp-inter.crl", inter.CRL(24*time.Hour))
		return "  - {id: cdp, ca: cdp-bundle.crt, crl: [cdp-inter.crl], crl_fetch_cdp: true, crl_refresh: 1ns}\n",
			"  - {id: cdp_mutual, protocol: https, listen: 127.0.0.1:0, target_group: web,\n" +
				"     ssl: {mode: mutual, server_certificates: [site], ca_certificate: cdp}}\n"
	})
	get := func(who *pkitest.Leaf) error {
		_, err := e.get("cdp_mutual", tls.VersionTLS13, new(who.TLS()), nil, false)
		return err
	}
	for _, who := range []*pkitest.Leaf{alice, bob} {
		if err := get(who); err != nil {
			t.Fatalf("%s before any revocation: %v", who.Cert.Subject, err)
		}
	}
	served.Store(new(e.ca.CRL(24*time.Hour, alice.Cert, inter.Cert)))
	if err := e.srv.FetchCRLs(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := e.waitReload(); err != nil {
		t.Fatal(err)
	}
	for _, who := range []*pkitest.Leaf{alice, bob} {
		if err := get(who); err == nil {
			t.Fatalf("%s served after the CRL at the bundle's CDP revoked him or his issuer", who.Cert.Subject)
		}
		if line := e.sink.Next(t, map[string]any{"msg": "handshake", "listener": "cdp_mutual"}); line["reason"] != "revoked" {
			t.Fatalf("line %v", line)
		}
	}
	if n := testutil.ToFloat64(e.metrics.CRLFetches.WithLabelValues("cdp", "updated")); n < 1 {
		t.Fatalf("tlsgate_crl_fetches_total{id=cdp,result=updated} %v, want the refresh counted", n)
	}
}
