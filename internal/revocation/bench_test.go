package revocation_test

import (
	"crypto/x509"
	"fmt"
	"testing"
	"time"

	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
	"tlsgate/internal/revocation"
)

// BenchmarkCheckChain is the CRL lookup of one handshake: a leaf under an intermediate
// whose CRL lists n serials. The lookup is indexed (ns/op stays flat as n grows) and a
// CRL's signature is checked once, at load or, for an issuer outside the CA bundle,
// the first time a chain shows that issuer ("pending"), never per handshake.
func BenchmarkCheckChain(b *testing.B) {
	root := pkitest.New(b, "root", pki.ECDSAP256)
	inter := root.Intermediate("inter")
	good, revoked := inter.Issue("alice"), inter.Issue("mallory")
	rootCRL := parse(b, root.CRL(time.Hour), root.Chain)
	for _, n := range []int{100, 100_000} {
		der := inter.LongCRL(n, revoked.Cert.SerialNumber)
		for _, place := range []struct {
			name    string
			issuers []*x509.Certificate // the CA bundle the CRL is loaded against
		}{{"loaded", inter.Chain}, {"pending", root.Chain}} {
			b.Run(fmt.Sprintf("%s/entries=%d", place.name, n), func(b *testing.B) {
				set := revocation.NewSet([]*revocation.CRL{parse(b, der, place.issuers), rootCRL}, false)
				goodChain := append(good.Chain, root.Cert)
				if err := set.CheckChain(append(revoked.Chain, root.Cert), pkitest.Now); err != revocation.ErrRevoked {
					b.Fatalf("revoked leaf: %v, want ErrRevoked", err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if err := set.CheckChain(goodChain, pkitest.Now); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func parse(b *testing.B, data []byte, issuers []*x509.Certificate) *revocation.CRL {
	b.Helper()
	c, err := revocation.Parse(data, issuers)
	if err != nil {
		b.Fatal(err)
	}
	return c
}
