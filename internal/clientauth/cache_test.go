package clientauth_test

import (
	"crypto/x509"
	"slices"
	"sync"
	"testing"
	"time"

	"tlsgate/internal/clientauth"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
	"tlsgate/internal/revocation"
)

// clock is a settable test clock, read by the Verifier under test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

func wantReason(t *testing.T, v *clientauth.Verifier, certs []*x509.Certificate, want clientauth.Reason) []*x509.Certificate {
	t.Helper()
	chain, err := v.Verify(certs)
	if got := clientauth.ReasonOf(err); got != want {
		t.Fatalf("reason = %q (%v), want %q", got, err, want)
	}
	return chain
}

func wantStats(t *testing.T, c *clientauth.Cache, hits, misses uint64) {
	t.Helper()
	if h, m := c.Stats(); h != hits || m != misses {
		t.Fatalf("cache hits/misses = %d/%d, want %d/%d", h, m, hits, misses)
	}
}

// TestCacheHitSkipsChainBuilding: a second Verify of the same certificates takes the
// stored chain without building it. Shown by sharing the cache (test only: a Cache
// serves one Verifier) with a Verifier that trusts no root, which can only answer OK
// from the cache, while it refuses a client it has not seen.
func TestCacheHitSkipsChainBuilding(t *testing.T) {
	t.Parallel()
	ca := pkitest.New(t, "root", pki.ECDSAP256)
	inter := ca.Intermediate("inter")
	alice, bob := inter.Issue("alice"), inter.Issue("bob")
	cache := clientauth.NewCache(10)
	now := func() time.Time { return pkitest.Now }
	v := &clientauth.Verifier{Roots: ca.Pool(), Now: now, Cache: cache}
	first := wantReason(t, v, alice.Chain, clientauth.OK)
	wantStats(t, cache, 0, 1)
	untrusting := &clientauth.Verifier{Roots: x509.NewCertPool(), Now: now, Cache: cache}
	if chain := wantReason(t, untrusting, alice.Chain, clientauth.OK); &chain[0] != &first[0] {
		t.Fatal("the hit did not return the stored chain")
	}
	wantStats(t, cache, 1, 1)
	wantReason(t, untrusting, bob.Chain, clientauth.UnknownCA)
	wantStats(t, cache, 1, 2)
	if cache.Len() != 1 {
		t.Fatalf("%d chains stored, want 1 (a refusal is never stored)", cache.Len())
	}
}

// TestCacheRechecks: what is not chain building is checked on every hit: a CRL or a
// denylist entry published after the chain was stored refuses the client at once, a
// clock past a certificate's NotAfter verifies in full (reason expired), and the same
// leaf sent with another intermediate is another key.
func TestCacheRechecks(t *testing.T) {
	t.Parallel()
	ca := pkitest.New(t, "root", pki.ECDSAP256)
	inter := ca.Intermediate("inter")
	other := pkitest.New(t, "other root", pki.ECDSAP256).Intermediate("other inter")
	clk := &clock{t: pkitest.Now}
	newVerifier := func() *clientauth.Verifier {
		return &clientauth.Verifier{Roots: ca.Pool(), Now: clk.Now, Cache: clientauth.NewCache(10)}
	}
	t.Run("revoked after caching", func(t *testing.T) {
		v, leaf := newVerifier(), inter.Issue("alice")
		wantReason(t, v, leaf.Chain, clientauth.OK)
		crl, err := revocation.Parse(inter.CRL(time.Hour, leaf.Cert), ca.Chain)
		if err != nil {
			t.Fatal(err)
		}
		v.CRLs = revocation.NewSet([]*revocation.CRL{crl}, true)
		wantReason(t, v, leaf.Chain, clientauth.Revoked)
		wantReason(t, v, leaf.Chain, clientauth.Revoked)
		wantStats(t, v.Cache, 1, 2) // the refused hit left the cache
	})
	t.Run("denied after caching", func(t *testing.T) {
		v, leaf := newVerifier(), inter.Issue("bob")
		wantReason(t, v, leaf.Chain, clientauth.OK)
		v.Deny = func(c *x509.Certificate) bool { return c.Equal(leaf.Cert) }
		wantReason(t, v, leaf.Chain, clientauth.Denied)
		wantStats(t, v.Cache, 1, 1)
	})
	t.Run("allow-list after caching", func(t *testing.T) {
		v, leaf := newVerifier(), inter.Issue("carol")
		wantReason(t, v, leaf.Chain, clientauth.OK)
		v.Allow = &clientauth.AllowList{CN: []string{"dave"}}
		wantReason(t, v, leaf.Chain, clientauth.NotAllowed)
	})
	t.Run("expired after caching", func(t *testing.T) {
		v, leaf := newVerifier(), inter.Issue("erin", pkitest.Valid(-time.Hour, time.Hour))
		wantReason(t, v, leaf.Chain, clientauth.OK)
		wantReason(t, v, leaf.Chain, clientauth.OK)
		wantStats(t, v.Cache, 1, 1)
		clk.Set(pkitest.Now.Add(2 * time.Hour))
		defer clk.Set(pkitest.Now)
		wantReason(t, v, leaf.Chain, clientauth.Expired)
		wantStats(t, v.Cache, 1, 2)
		if v.Cache.Len() != 0 {
			t.Fatal("an expired chain stayed in the cache")
		}
	})
	t.Run("another intermediate", func(t *testing.T) {
		v, leaf := newVerifier(), inter.Issue("frank")
		wantReason(t, v, leaf.Chain, clientauth.OK)
		wantReason(t, v, []*x509.Certificate{leaf.Cert, other.Cert}, clientauth.UnknownCA)
		wantReason(t, v, []*x509.Certificate{leaf.Cert}, clientauth.UnknownCA)
		wantStats(t, v.Cache, 0, 3)
	})
}

// TestCacheSplitKey: the key length-prefixes each certificate, so the same bytes cut
// into certificates differently are different keys.
func TestCacheSplitKey(t *testing.T) {
	t.Parallel()
	ca := pkitest.New(t, "root", pki.ECDSAP256)
	leaf := ca.Issue("alice")
	raw := append(append([]byte{}, leaf.Cert.Raw...), ca.Cert.Raw[:10]...)
	split := []*x509.Certificate{{Raw: raw}, {Raw: ca.Cert.Raw[10:]}}
	if clientauth.CacheKey(split) == clientauth.CacheKey([]*x509.Certificate{leaf.Cert, ca.Cert}) {
		t.Fatal("two splits of the same bytes share a key")
	}
}

// TestCacheBound: the cache never holds more than its size, and drops the least
// recently used chain first.
func TestCacheBound(t *testing.T) {
	t.Parallel()
	ca := pkitest.New(t, "root", pki.ECDSAP256)
	v := &clientauth.Verifier{Roots: ca.Pool(), Now: func() time.Time { return pkitest.Now }, Cache: clientauth.NewCache(3)}
	kept := ca.Issue("kept")
	for i := range 10 {
		wantReason(t, v, kept.Chain, clientauth.OK) // used before each new one
		wantReason(t, v, ca.Issue("client").Chain, clientauth.OK)
		if n := v.Cache.Len(); n > 3 || n != min(i+2, 3) {
			t.Fatalf("after %d clients: %d chains stored, want %d", i+2, n, min(i+2, 3))
		}
	}
	wantStats(t, v.Cache, 9, 11) // kept missed once, then always hit
}

// TestCacheConcurrent: verifications from many goroutines share one cache (run with
// -race), its bound holds, and every answer is right.
func TestCacheConcurrent(t *testing.T) {
	t.Parallel()
	ca := pkitest.New(t, "root", pki.ECDSAP256)
	inter := ca.Intermediate("inter")
	revoked := inter.Issue("revoked")
	crl, err := revocation.Parse(inter.CRL(time.Hour, revoked.Cert), ca.Chain)
	if err != nil {
		t.Fatal(err)
	}
	v := &clientauth.Verifier{Roots: ca.Pool(), Now: func() time.Time { return pkitest.Now },
		CRLs: revocation.NewSet([]*revocation.CRL{crl}, true), Cache: clientauth.NewCache(5)}
	leaves := []*pkitest.Leaf{revoked}
	for range 12 {
		leaves = append(leaves, inter.Issue("client"))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				l := leaves[(g*7+i)%len(leaves)]
				want := clientauth.OK
				if l == revoked {
					want = clientauth.Revoked
				}
				if _, err := v.Verify(l.Chain); clientauth.ReasonOf(err) != want {
					t.Errorf("%s: %v, want %s", l.Cert.Subject, err, want)
					return
				}
				if n := v.Cache.Len(); n > 5 {
					t.Errorf("%d chains stored, more than 5", n)
					return
				}
			}
		})
	}
	wg.Wait()
	if h, _ := v.Cache.Stats(); h == 0 {
		t.Fatal("no hit")
	}
}

// TestCacheGrace: a stored chain whose leaf passes its NotAfter still hits within the
// expiry grace (flagged InGrace as without the cache), and past it verifies in full and
// is refused as expired.
func TestCacheGrace(t *testing.T) {
	t.Parallel()
	ca := pkitest.New(t, "root", pki.ECDSAP256)
	inter := ca.Intermediate("inter")
	clk := &clock{t: pkitest.Now}
	v := &clientauth.Verifier{Roots: ca.Pool(), Now: clk.Now, ExpiryGrace: 48 * time.Hour, Cache: clientauth.NewCache(4)}
	leaf := inter.Issue("alice", pkitest.Valid(-time.Hour, time.Hour))
	if chain := wantReason(t, v, leaf.Chain, clientauth.OK); v.InGrace(chain[0]) {
		t.Fatal("in grace before its NotAfter")
	}
	clk.Set(pkitest.Now.Add(25 * time.Hour))
	if chain := wantReason(t, v, leaf.Chain, clientauth.OK); !v.InGrace(chain[0]) {
		t.Fatal("not in grace past its NotAfter")
	}
	wantStats(t, v.Cache, 1, 1)
	clk.Set(pkitest.Now.Add(50 * time.Hour))
	wantReason(t, v, leaf.Chain, clientauth.Expired)
	wantStats(t, v.Cache, 1, 2)
	// A leaf first seen in its grace is stored too, and hits.
	clk.Set(pkitest.Now.Add(25 * time.Hour))
	late := inter.Issue("bob", pkitest.Valid(-time.Hour, time.Hour))
	wantReason(t, v, late.Chain, clientauth.OK)
	wantReason(t, v, late.Chain, clientauth.OK)
	wantStats(t, v.Cache, 2, 3)
}

// TestCachePassed: Passed gives the chain of a Verify that passed for this very slice
// of certificates, and nothing for a refused one, for the same certificates in another
// slice, or without a cache.
func TestCachePassed(t *testing.T) {
	t.Parallel()
	ca := pkitest.New(t, "root", pki.ECDSAP256)
	good, revoked := ca.Issue("alice"), ca.Issue("mallory")
	crl, err := revocation.Parse(ca.CRL(time.Hour, revoked.Cert), ca.Chain)
	if err != nil {
		t.Fatal(err)
	}
	v := &clientauth.Verifier{Roots: ca.Pool(), Now: func() time.Time { return pkitest.Now },
		CRLs: revocation.NewSet([]*revocation.CRL{crl}, true), Cache: clientauth.NewCache(4)}
	chain := wantReason(t, v, good.Chain, clientauth.OK)
	if got := v.Passed(good.Chain); len(got) == 0 || &got[0] != &chain[0] {
		t.Fatal("the chain that passed is not remembered")
	}
	if v.Passed(slices.Clone(good.Chain)) != nil {
		t.Fatal("another slice of the same certificates is taken as passed")
	}
	wantReason(t, v, revoked.Chain, clientauth.Revoked)
	if v.Passed(revoked.Chain) != nil {
		t.Fatal("a refused verification is remembered")
	}
	for range 100 { // pushed out by others, never wrong
		wantReason(t, v, ca.Issue("other").Chain, clientauth.OK)
	}
	if v.Passed(good.Chain) != nil {
		t.Fatal("remembered past the ring")
	}
	if (&clientauth.Verifier{}).Passed(good.Chain) != nil {
		t.Fatal("remembered without a cache")
	}
}
