package revocation_test

import (
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
	"tlsgate/internal/revocation"
)

// TestChainAnchoredAtBundleIntermediate: a chain that ends at an intermediate of the CA
// bundle (crypto/tls stops at the first bundle certificate) is checked against the
// root's CRL too: a CRL of the root revoking the intermediate refuses the chain, one that
// does not lets it pass, and a root-anchored chain is checked as before.
func TestChainAnchoredAtBundleIntermediate(t *testing.T) {
	root := pkitest.New(t, "anchor root", pki.ECDSAP256)
	inter := root.Intermediate("anchor intermediate")
	bob := inter.Issue("bob")
	alice := root.Issue("alice")
	bundle := []*x509.Certificate{root.Cert, inter.Cert}
	set := func(rootCRL []byte) *revocation.Set {
		t.Helper()
		var all []*revocation.CRL
		for _, data := range [][]byte{rootCRL, inter.CRL(24 * time.Hour)} {
			cs, err := revocation.ParseFile(data, bundle)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, cs...)
		}
		return revocation.NewSet(all, false)
	}
	anchoredAtInter := []*x509.Certificate{bob.Cert, inter.Cert}
	if err := set(root.CRL(24*time.Hour)).CheckChain(anchoredAtInter, pkitest.Now); err != nil {
		t.Fatalf("no revocation: %v", err)
	}
	revoking := set(root.CRL(24*time.Hour, inter.Cert))
	if err := revoking.CheckChain(anchoredAtInter, pkitest.Now); !errors.Is(err, revocation.ErrRevoked) {
		t.Fatalf("the root's CRL revokes the anchoring intermediate: %v, want ErrRevoked", err)
	}
	if err := revoking.CheckChain(anchoredAtInter, pkitest.Now); !errors.Is(err, revocation.ErrRevoked) {
		t.Fatalf("second check (cached issuer): %v, want ErrRevoked", err)
	}
	if err := revoking.CheckChain([]*x509.Certificate{alice.Cert, root.Cert}, pkitest.Now); err != nil {
		t.Fatalf("a root-anchored chain the CRL does not list: %v", err)
	}
	if err := set(root.CRL(24*time.Hour, alice.Cert)).CheckChain([]*x509.Certificate{alice.Cert, root.Cert}, pkitest.Now); !errors.Is(err, revocation.ErrRevoked) {
		t.Fatalf("a root-anchored chain the CRL lists: %v, want ErrRevoked", err)
	}
}
