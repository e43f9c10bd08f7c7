package server_test

import (
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"tlsgate/internal/certfile"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
)

// TestCertificateExpiryMetric: tlsgate_certificate_expiry_seconds{id,kind,subject} has a
// series for the server certificate, each CA of a bundle and each CRL (its nextUpdate),
// each the seconds left (issue #6's seconds-to-expiry of every server certificate, CA
// and CRL).
func TestCertificateExpiryMetric(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	data, err := os.ReadFile(filepath.Join(e.dir, "server.crt"))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := certfile.ParseCertificates(data)
	if err != nil {
		t.Fatal(err)
	}
	g := e.metrics.CertExpiry
	for _, c := range []struct {
		id, kind, subject string
		at                time.Time
	}{
		{"site", "server", "CN=localhost", leaf[0].NotAfter},
		{"clients", "ca", "CN=test root", e.ca.Cert.NotAfter},
		{"clients", "crl", "CN=test root", pkitest.Now.Add(24 * time.Hour)},
		{"clients", "crl", "CN=test intermediate", pkitest.Now.Add(24 * time.Hour)},
	} {
		want := time.Until(c.at).Seconds()
		got := testutil.ToFloat64(g.WithLabelValues(c.id, c.kind, c.subject))
		if math.Abs(got-want) > 60 {
			t.Errorf("%s %s %q: %.0f seconds to expiry, want about %.0f", c.id, c.kind, c.subject, got, want)
		}
	}
	if n := testutil.CollectAndCount(g); n != 4 {
		t.Errorf("%d series, want 4 (server, CA, two CRLs)", n)
	}
}
