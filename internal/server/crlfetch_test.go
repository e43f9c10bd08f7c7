package server_test

import (
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
)

// TestCRLFetch: a CRL named by URL is fetched, applied without a restart, kept when the
// responder fails, and never replaced by an older or forged one.
func TestCRLFetch(t *testing.T) {
	var served atomic.Pointer[[]byte]
	var status atomic.Int32
	status.Store(http.StatusOK)
	responder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if code := int(status.Load()); code != http.StatusOK {
			w.WriteHeader(code)
			return
		}
		_, _ = w.Write(*served.Load())
	}))
	defer responder.Close()
	var alice *pkitest.Leaf
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		alice = e.ca.Issue("alice")
		served.Store(new(e.ca.CRL(24 * time.Hour)))
		return fmt.Sprintf("  - {id: fetched, ca: ca.crt, crl_urls: [%s/ca.crl], crl_refresh: 1ns}\n", responder.URL),
			"  - {id: fetching, protocol: https, listen: 127.0.0.1:0, target_group: web,\n" +
				"     ssl: {mode: mutual, server_certificates: [site], ca_certificate: fetched}}\n"
	})
	get := func() error {
		_, err := e.get("fetching", tls.VersionTLS13, new(alice.TLS()), nil, false)
		return err
	}
	if err := get(); err != nil {
		t.Fatalf("before revocation: %v", err)
	}
	served.Store(new(e.ca.CRL(24*time.Hour, alice.Cert)))
	if err := e.srv.FetchCRLs(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := e.waitReload(); err != nil {
		t.Fatal(err)
	}
	if err := get(); err == nil {
		t.Fatal("alice served after the fetched CRL revoked her")
	}
	if line := e.sink.Next(t, map[string]any{"msg": "handshake", "listener": "fetching"}); line["reason"] != "revoked" {
		t.Fatalf("line %v", line)
	}
	older, err := e.ca.CA.CRL(nil, 1, pkitest.Now.Add(-2*time.Hour), pkitest.Now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	impostor := pkitest.New(t, "test root", pki.ECDSAP256)
	for _, bad := range []struct {
		name   string
		status int
		body   []byte
	}{
		{"responder error", http.StatusInternalServerError, nil},
		{"older CRL", http.StatusOK, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: older})},
		{"forged CRL", http.StatusOK, impostor.CRL(time.Hour)},
	} {
		t.Run(bad.name, func(t *testing.T) {
			e.t = t
			status.Store(int32(bad.status))
			served.Store(&bad.body)
			failures := testutil.ToFloat64(e.metrics.CRLFetches.WithLabelValues("fetched", "failure"))
			if err := e.srv.FetchCRLs(t.Context()); err != nil {
				t.Fatal(err)
			}
			if testutil.ToFloat64(e.metrics.CRLFetches.WithLabelValues("fetched", "failure")) != failures+1 {
				t.Fatal("the fetch was not counted as a failure")
			}
			if err := get(); err == nil {
				t.Fatal("the last good CRL was not kept")
			}
		})
	}
}
