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
// CDP, revoking alice refuses her after the fetch.
func TestCRLFetchFromBundleCDP(t *testing.T) {
	var served atomic.Pointer[[]byte]
	responder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(*served.Load())
	}))
	defer responder.Close()
	var alice *pkitest.Leaf
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		inter := e.ca.Intermediate("cdp intermediate", pkitest.CRLURL(responder.URL+"/root.crl"))
		alice = e.ca.Issue("alice")
		served.Store(new(e.ca.CRL(24 * time.Hour)))
		pkitest.Write(t, e.dir, "cdp-bundle.crt", append(e.ca.PEM(), inter.PEM()...))
		pkitest.Write(t, e.dir, "cdp-inter.crl", inter.CRL(24*time.Hour))
		return "  - {id: cdp, ca: cdp-bundle.crt, crl: [cdp-inter.crl], crl_fetch_cdp: true, crl_refresh: 1ns}\n",
			"  - {id: cdp_mutual, protocol: https, listen: 127.0.0.1:0, target_group: web,\n" +
				"     ssl: {mode: mutual, server_certificates: [site], ca_certificate: cdp}}\n"
	})
	get := func() error {
		_, err := e.get("cdp_mutual", tls.VersionTLS13, new(alice.TLS()), nil, false)
		return err
	}
	if err := get(); err != nil {
		t.Fatalf("alice before her revocation: %v", err)
	}
	served.Store(new(e.ca.CRL(24*time.Hour, alice.Cert)))
	if err := e.srv.FetchCRLs(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := e.waitReload(); err != nil {
		t.Fatal(err)
	}
	if err := get(); err == nil {
		t.Fatal("alice served after the CRL at the bundle's CDP revoked her")
	}
	if line := e.sink.Next(t, map[string]any{"msg": "handshake", "listener": "cdp_mutual"}); line["reason"] != "revoked" {
		t.Fatalf("line %v", line)
	}
	if n := testutil.ToFloat64(e.metrics.CRLFetches.WithLabelValues("cdp", "updated")); n < 1 {
		t.Fatalf("tlsgate_crl_fetches_total{id=cdp,result=updated} %v, want the refresh counted", n)
	}
}
