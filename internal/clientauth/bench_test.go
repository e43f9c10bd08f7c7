package clientauth_test

import (
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
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

// BenchmarkVerifyCache is the whole pipeline for a population of 1,000 client
// certificates (each sent with its intermediate, a CRL of 10,000 entries per issuer)
// reconnecting in a uniformly random order, without a cache and with caches of 1,000
// and fewer chains (least recently used dropped first). It reports the hit ratio and
// the heap each stored chain keeps (the client's parsed certificates included).
func BenchmarkVerifyCache(b *testing.B) {
	ca := pkitest.New(b, "root", pki.ECDSAP256)
	inter := ca.Intermediate("inter")
	set := revocation.NewSet([]*revocation.CRL{bigCRL(b, inter, 10000), mustCRL(b, ca.CRL(time.Hour), ca.Chain)}, false)
	const population = 1000
	clients := make([][][]byte, population) // DER, as a client sends it
	for i := range clients {
		for _, c := range inter.Issue(fmt.Sprintf("client %d", i)).Chain {
			clients[i] = append(clients[i], c.Raw)
		}
	}
	// parse is what crypto/tls does with each handshake's Certificate message.
	parse := func(ders [][]byte) []*x509.Certificate {
		certs := make([]*x509.Certificate, len(ders))
		for i, d := range ders {
			c, err := x509.ParseCertificate(slices.Clone(d))
			if err != nil {
				b.Fatal(err)
			}
			certs[i] = c
		}
		return certs
	}
	for _, size := range []int{0, 1000, 500, 100} {
		b.Run(fmt.Sprintf("cache=%d", size), func(b *testing.B) {
			v := &clientauth.Verifier{Roots: ca.Pool(), CRLs: set, Now: func() time.Time { return pkitest.Now }}
			perEntry := 0.0
			if size > 0 {
				v.Cache = clientauth.NewCache(size)
				perEntry = entryBytes(b, v, size, func(i int) []*x509.Certificate { return parse(clients[i]) })
			}
			r := rand.New(rand.NewPCG(1, 2))
			chains := make([][]*x509.Certificate, population) // parsed once, outside the loop
			for i := range chains {
				chains[i] = parse(clients[i])
			}
			var hits0 uint64
			if v.Cache != nil {
				hits0, _ = v.Cache.Stats()
			}
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				if _, err := v.Verify(chains[r.IntN(population)]); err != nil {
					b.Fatal(err)
				}
				n++
			}
			if v.Cache != nil {
				hits, _ := v.Cache.Stats()
				b.ReportMetric(float64(hits-hits0)/float64(n), "hits/op")
				b.ReportMetric(perEntry, "B/entry")
			}
		})
	}
}

// entryBytes fills v's cache with size distinct clients, freshly parsed, and returns
// the heap it keeps per entry.
func entryBytes(b *testing.B, v *clientauth.Verifier, size int, certs func(int) []*x509.Certificate) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range size {
		if _, err := v.Verify(certs(i)); err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if v.Cache.Len() != size {
		b.Fatalf("%d entries, want %d", v.Cache.Len(), size)
	}
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(size)
}
