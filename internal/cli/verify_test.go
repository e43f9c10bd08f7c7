package cli

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"tlsgate/internal/certfile"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
)

// TestCertVerifyReasons: cert verify gives the server's reason codes (issue #3: the same
// pipeline and reason codes as the server) and exits 0 on OK, 1 on a failure.
func TestCertVerifyReasons(t *testing.T) {
	dir := t.TempDir()
	ca := pkitest.New(t, "verify root", pki.ECDSAP256)
	inter := ca.Intermediate("verify intermediate")
	other := pkitest.New(t, "other root", pki.ECDSAP256)
	alice := inter.Issue("alice")
	mallory := inter.Issue("mallory")
	write := func(name string, certs ...*x509.Certificate) string {
		var pem []byte
		for _, c := range certs {
			pem = append(pem, certfile.EncodePEM(c)...)
		}
		return pkitest.Write(t, dir, name, pem)
	}
	caFile := write("ca.crt", ca.Cert)
	crl := pkitest.Write(t, dir, "all.crl", append(ca.CRL(24*time.Hour), inter.CRL(24*time.Hour, mallory.Cert)...))
	expired := inter.Issue("old", pkitest.Valid(-48*time.Hour, -time.Hour))
	www := inter.Issue("www", pkitest.Server("www.example.com"))
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"valid", []string{"--crl", crl, write("alice.crt", alice.Cert, inter.Cert)}, 0, "OK (CN=alice → CN=verify intermediate → CN=verify root)"},
		{"revoked", []string{"--crl", crl, write("mallory.crt", mallory.Cert, inter.Cert)}, 1, "FAILED: revoked:"},
		{"missing intermediate", []string{write("alice-leaf.crt", alice.Cert)}, 1, "FAILED: unknown_ca:"},
		{"other CA", []string{write("eve.crt", other.Issue("eve").Cert)}, 1, "FAILED: unknown_ca:"},
		{"expired", []string{write("old.crt", expired.Cert, inter.Cert)}, 1, "FAILED: expired:"},
		{"server certificate as a client's", []string{write("www.crt", www.Cert, inter.Cert)}, 1, "FAILED: bad_usage:"},
		{"server certificate for a server", []string{"--purpose", "server", write("www2.crt", www.Cert, inter.Cert)}, 0, "OK"},
		{"CA as the leaf", []string{write("inter.crt", inter.Cert)}, 1, "FAILED: bad_usage:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, stderr := run(append([]string{"cert", "verify", "--ca", caFile}, tc.args...)...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, %q %q; want exit %d and %q", code, out, stderr, tc.code, tc.want)
			}
		})
	}
}
