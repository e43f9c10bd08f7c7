package opensslsign_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"testing"

	"tlsgate/internal/opensslsign"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
)

// TestWrapWithoutOpenSSL: a build without the tag hands every key back as it is.
func TestWrapWithoutOpenSSL(t *testing.T) {
	if opensslsign.Enabled {
		t.Skip("built with OpenSSL: openssl_test.go covers Wrap")
	}
	key := pkitest.Key(t, pki.RSA2048)
	got, err := opensslsign.Wrap(key)
	if err != nil || got != key {
		t.Fatalf("Wrap gave %T, %v; want the key itself", got, err)
	}
}

// BenchmarkSign compares one TLS 1.3 server signature (RSA-2048 PSS SHA-256, and ECDSA
// P-256) by the key as Go holds it (Go's crypto or, under
// GOEXPERIMENT=boringcrypto, BoringCrypto) and by Wrap's Signer (OpenSSL with the tag;
// the same key without it).
func BenchmarkSign(b *testing.B) {
	d := sha256.Sum256([]byte("handshake transcript"))
	pss := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	rk := pkitest.Key(b, pki.RSA2048)
	wk, err := opensslsign.Wrap(rk)
	if err != nil {
		b.Fatal(err)
	}
	ek := pkitest.Key(b, pki.ECDSAP256)
	wek, err := opensslsign.Wrap(ek)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		key  crypto.Signer
		opts crypto.SignerOpts
	}{
		{"rsa2048-pss/crypto-rsa", rk, pss},
		{"rsa2048-pss/wrapped", wk, pss},
		{"ecdsa-p256/crypto-ecdsa", ek, crypto.SHA256},
		{"ecdsa-p256/wrapped", wek, crypto.SHA256},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := bc.key.Sign(rand.Reader, d[:], bc.opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
