package certfile_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"tlsgate/internal/certfile"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
)

func TestLintServer(t *testing.T) {
	ca := pkitest.New(t, "root", pki.ECDSAP256)
	inter := ca.Intermediate("inter")
	leaf := inter.Issue("www", pkitest.Server("www"))
	direct := ca.Issue("direct", pkitest.Server("direct"))
	soon := inter.Issue("soon", pkitest.Server("soon"), pkitest.Valid(-time.Hour, 10*24*time.Hour))
	for _, tc := range []struct {
		name  string
		certs []*x509.Certificate
		key   *pkitest.Leaf
		want  []string
	}{
		{"good", []*x509.Certificate{leaf.Cert, inter.Cert}, leaf, nil},
		{"wrong order", []*x509.Certificate{inter.Cert, leaf.Cert}, leaf, []string{"out of order"}},
		{"missing intermediate", []*x509.Certificate{leaf.Cert}, leaf, []string{`whose issuer "CN=inter" is neither included`}},
		{"expires soon", []*x509.Certificate{soon.Cert, inter.Cert}, soon, []string{"expires in 10 days"}},
		{"leaf alone under a trusted root", []*x509.Certificate{direct.Cert}, direct, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := certfile.LintServer(tc.certs, tc.key.Key, ca.Pool(), pkitest.Now)
			if len(ws) != len(tc.want) {
				t.Fatalf("warnings %q, want %d", ws, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(ws[i], w) {
					t.Errorf("warning %q lacks %q", ws[i], w)
				}
			}
		})
	}
}

// TestLintCA: a CA that cannot sign, a weak key and an expired CA are named.
func TestLintCA(t *testing.T) {
	good := pkitest.New(t, "good", pki.ECDSAP256)
	noSign, _, err := good.CA.Issue(pki.Request{CommonName: "no-sign", Usage: pki.UsageCA, KeyUsage: x509.KeyUsageDigitalSignature, Now: pkitest.Now})
	if err != nil {
		t.Fatal(err)
	}
	weakKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weak, _, err := good.CA.Issue(pki.Request{CommonName: "weak", Usage: pki.UsageCA, Key: weakKey, Now: pkitest.Now})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		certs []*x509.Certificate
		now   time.Time
		want  string
	}{
		{"clean", []*x509.Certificate{good.Cert}, pkitest.Now, ""},
		{"no keyCertSign", []*x509.Certificate{noSign}, pkitest.Now, "without the keyCertSign key usage"},
		{"weak RSA", []*x509.Certificate{weak}, pkitest.Now, "1024-bit RSA key"},
		{"expired", []*x509.Certificate{good.Cert}, pkitest.Now.AddDate(20, 0, 0), "expired on"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := certfile.LintCA(tc.certs, tc.now)
			if tc.want == "" && len(ws) != 0 || tc.want != "" && (len(ws) != 1 || !strings.Contains(ws[0], tc.want)) {
				t.Fatalf("warnings %q, want one with %q", ws, tc.want)
			}
		})
	}
}
