package certfile_test

import (
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
