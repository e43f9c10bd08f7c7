package clientauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/url"
	"reflect"
	"testing"
	"time"
)

// selfSigned makes a small certificate named cn, with a URI SAN; key is reused so the
// test stays fast.
func selfSigned(t testing.TB, key *ecdsa.PrivateKey, cn string, serial int64) *x509.Certificate {
	t.Helper()
	u, _ := url.Parse("spiffe://example.org/" + cn)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"tlsgate"}},
		NotBefore:    time.Unix(1e9, 0), NotAfter: time.Unix(2e9, 0),
		DNSNames: []string{cn + ".example"}, URIs: []*url.URL{u},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestIdentityOfCached: the cached answer is the computed one, per certificate (two
// certificates never share an entry), including a certificate parsed again from the
// same DER.
func TestIdentityOfCached(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	a, b := selfSigned(t, key, "alice", 1), selfSigned(t, key, "bob", 2)
	for range 2 { // the second round is answered from the cache
		for _, c := range []*x509.Certificate{a, b} {
			if got, want := IdentityOf(c), describe(c); !reflect.DeepEqual(got, want) {
				t.Fatalf("IdentityOf(%s) = %+v, want %+v", c.Subject, got, want)
			}
		}
	}
	again, _ := x509.ParseCertificate(a.Raw)
	if got := IdentityOf(again); got.Subject != "CN=alice,O=tlsgate" || got.URIs[0] != "spiffe://example.org/alice" {
		t.Fatalf("IdentityOf(alice parsed again) = %+v", got)
	}
	if IdentityOf(nil).Subject != "" {
		t.Fatal("IdentityOf(nil) is not the zero Identity")
	}
}

// TestIdentityCacheBounded: many distinct clients and oversized certificates do not
// grow the cache past its bound.
func TestIdentityCacheBounded(t *testing.T) {
	c := &identityCache{m: make(map[string]Identity)}
	for i := range identityCacheEntries + 50 {
		c.put([]byte{byte(i), byte(i >> 8), 1}, Identity{Subject: "x"})
	}
	if n := c.len(); n != identityCacheEntries {
		t.Fatalf("cache holds %d entries, bound %d", n, identityCacheEntries)
	}
	c = &identityCache{m: make(map[string]Identity)}
	c.put(make([]byte, identityCacheMaxDER+1), Identity{})
	if n := c.len(); n != 0 {
		t.Fatalf("an oversized certificate was cached (%d entries)", n)
	}
}

// BenchmarkIdentityOf is the per-connection cost of describing a returning client.
func BenchmarkIdentityOf(b *testing.B) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c := selfSigned(b, key, "alice", 1)
	b.ReportAllocs()
	for b.Loop() {
		_ = IdentityOf(c)
	}
}

// BenchmarkDescribe is the same without the cache.
func BenchmarkDescribe(b *testing.B) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c := selfSigned(b, key, "alice", 1)
	b.ReportAllocs()
	for b.Loop() {
		_ = describe(c)
	}
}
