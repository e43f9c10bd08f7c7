package clientauth_test

import (
	"crypto/x509"
	"testing"
	"time"

	"tlsgate/internal/clientauth"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
	"tlsgate/internal/revocation"
)

// BenchmarkVerify is the whole pipeline (chain building included) for an intermediate-
// signed client, against a CRL of 10,000 entries per issuer.
func BenchmarkVerify(b *testing.B) {
	ca := pkitest.New(b, "root", pki.ECDSAP256)
	inter := ca.Intermediate("inter")
	leaf := inter.Issue("alice")
	crl := bigCRL(b, inter, 10000)
	set := revocation.NewSet([]*revocation.CRL{crl, mustCRL(b, ca.CRL(time.Hour), ca.Chain)}, false)
	v := &clientauth.Verifier{Roots: ca.Pool(), CRLs: set, Allow: &clientauth.AllowList{CN: []string{"alice"}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(leaf.Chain); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckVerified is what runs per handshake in mutual mode after crypto/tls built
// the chain: CA-as-leaf, CRL lookup (10,000 entries), allow-list.
func BenchmarkCheckVerified(b *testing.B) {
	ca := pkitest.New(b, "root", pki.ECDSAP256)
	inter := ca.Intermediate("inter")
	leaf := inter.Issue("alice")
	set := revocation.NewSet([]*revocation.CRL{bigCRL(b, inter, 10000), mustCRL(b, ca.CRL(time.Hour), ca.Chain)}, false)
	v := &clientauth.Verifier{Roots: ca.Pool(), CRLs: set, Allow: &clientauth.AllowList{CN: []string{"alice"}}}
	chain := append(leaf.Chain, ca.Cert)
	b.ReportAllocs()
	for b.Loop() {
		if err := v.CheckVerified(chain); err != nil {
			b.Fatal(err)
		}
	}
}

func bigCRL(b *testing.B, ca *pkitest.CA, n int) *revocation.CRL {
	b.Helper()
	return mustCRL(b, ca.LongCRL(n, nil), ca.Chain)
}

func mustCRL(b *testing.B, data []byte, issuers []*x509.Certificate) *revocation.CRL {
	b.Helper()
	c, err := revocation.Parse(data, issuers)
	if err != nil {
		b.Fatal(err)
	}
	return c
}
