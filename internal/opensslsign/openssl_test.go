//go:build openssl && cgo

package opensslsign_test

import (
	"crypto"
	"crypto/fips140"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"

	"tlsgate/internal/opensslsign"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
)

func wrapped(t *testing.T) (*rsa.PrivateKey, *opensslsign.Key) {
	t.Helper()
	rk := pkitest.Key(t, pki.RSA2048).(*rsa.PrivateKey)
	s, err := opensslsign.Wrap(rk)
	if err != nil {
		t.Fatal(err)
	}
	k, ok := s.(*opensslsign.Key)
	if !ok {
		t.Fatalf("Wrap gave %T, want *opensslsign.Key", s)
	}
	return rk, k
}

func digest(h crypto.Hash, msg string) []byte {
	w := h.New()
	w.Write([]byte(msg))
	return w.Sum(nil)
}

// TestSignVerifiesWithGo: every signature OpenSSL makes verifies with crypto/rsa, for
// each hash and padding crypto/tls asks for (and PSS with the maximum salt).
func TestSignVerifiesWithGo(t *testing.T) {
	t.Parallel()
	_, k := wrapped(t)
	pub := k.Public().(*rsa.PublicKey)
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		d := digest(h, "message")
		t.Run(h.String()+"/pkcs1v15", func(t *testing.T) {
			sig, err := k.Sign(rand.Reader, d, h)
			if err != nil {
				t.Fatal(err)
			}
			if err := rsa.VerifyPKCS1v15(pub, h, d, sig); err != nil {
				t.Fatal(err)
			}
			if err := rsa.VerifyPKCS1v15(pub, h, digest(h, "other"), sig); err == nil {
				t.Fatal("signature verifies for another message")
			}
		})
		for _, salt := range []int{rsa.PSSSaltLengthEqualsHash, h.Size(), rsa.PSSSaltLengthAuto} {
			t.Run(h.String()+"/pss", func(t *testing.T) {
				opts := &rsa.PSSOptions{SaltLength: salt, Hash: h}
				sig, err := k.Sign(rand.Reader, d, opts)
				if err != nil {
					t.Fatal(err)
				}
				// Verify with the exact salt length the options promise.
				want := h.Size()
				if salt == rsa.PSSSaltLengthAuto {
					want = pub.Size() - 2 - h.Size()
				}
				if err := rsa.VerifyPSS(pub, h, d, sig, &rsa.PSSOptions{SaltLength: want, Hash: h}); err != nil {
					t.Fatalf("salt %d: %v", salt, err)
				}
			})
		}
	}
}

// TestSignRefuses: what OpenSSL would sign differently, or this package does not
// offer, is an error, never a signature of another kind.
func TestSignRefuses(t *testing.T) {
	t.Parallel()
	_, k := wrapped(t)
	d256 := digest(crypto.SHA256, "m")
	for _, tc := range []struct {
		name   string
		digest []byte
		opts   crypto.SignerOpts
	}{
		{"no options", d256, nil},
		{"raw PKCS #1 v1.5 without a hash (TLS 1.0 MD5+SHA1)", make([]byte, 36), crypto.Hash(0)},
		{"MD5", make([]byte, 16), crypto.MD5},
		{"SHA-224", make([]byte, 28), crypto.SHA224},
		{"digest of the wrong length", d256[:20], crypto.SHA256},
		{"PSS salt of another length", d256, &rsa.PSSOptions{SaltLength: 20, Hash: crypto.SHA256}},
		{"PSS with an unknown salt constant", d256, &rsa.PSSOptions{SaltLength: -7, Hash: crypto.SHA256}},
		{"PSS without a hash", d256, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if sig, err := k.Sign(rand.Reader, tc.digest, tc.opts); err == nil {
				t.Fatalf("signed (%d bytes), want an error", len(sig))
			}
		})
	}
}

// TestWrapBadKey: a key whose parts do not fit together is refused at load.
func TestWrapBadKey(t *testing.T) {
	t.Parallel()
	rk := pkitest.Key(t, pki.RSA2048).(*rsa.PrivateKey)
	bad := *rk
	bad.D = new(big.Int).Add(rk.D, big.NewInt(2))
	bad.Precomputed = rsa.PrecomputedValues{}
	if _, err := opensslsign.Wrap(&bad); err == nil {
		t.Fatal("Wrap accepted a key with a wrong private exponent")
	}
	if _, err := opensslsign.Wrap(&rsa.PrivateKey{}); err == nil {
		t.Fatal("Wrap accepted an empty key")
	}
}

// TestWrapLeavesWeakKeys: a key crypto/rsa refuses to sign with (under 1024 bits)
// stays with crypto/rsa, so the refusal stands; OpenSSL would sign with it.
func TestWrapLeavesWeakKeys(t *testing.T) {
	t.Parallel()
	k := smallKey(t, 512)
	got, err := opensslsign.Wrap(k)
	if err != nil || got != crypto.Signer(k) {
		t.Fatalf("Wrap gave %T, %v; want the 512-bit key itself", got, err)
	}
	d := sha256.Sum256([]byte("m"))
	if _, err := got.Sign(rand.Reader, d[:], crypto.SHA256); err == nil {
		t.Fatal("a 512-bit key signed")
	}
}

// smallKey builds an RSA key of bits from two random primes (crypto/rsa.GenerateKey
// refuses sizes under 1024).
func smallKey(t *testing.T, bits int) *rsa.PrivateKey {
	t.Helper()
	e := big.NewInt(65537)
	one := big.NewInt(1)
	for {
		p, err := rand.Prime(rand.Reader, bits/2)
		if err != nil {
			t.Fatal(err)
		}
		q, err := rand.Prime(rand.Reader, bits/2)
		if err != nil {
			t.Fatal(err)
		}
		phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
		d := new(big.Int).ModInverse(e, phi)
		n := new(big.Int).Mul(p, q)
		if p.Cmp(q) == 0 || d == nil || n.BitLen() != bits {
			continue
		}
		k := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: n, E: 65537}, D: d, Primes: []*big.Int{p, q}}
		k.Precompute()
		if err := k.Validate(); err != nil {
			t.Fatal(err)
		}
		return k
	}
}

// TestWrapLeavesOtherKeys: ECDSA keys on other curves than P-256 and Ed25519 keys come
// back as they are.
func TestWrapLeavesOtherKeys(t *testing.T) {
	t.Parallel()
	for _, kt := range []pki.KeyType{pki.ECDSAP384, pki.Ed25519} {
		key := pkitest.Key(t, kt)
		got, err := opensslsign.Wrap(key)
		if err != nil || reflect.TypeOf(got) != reflect.TypeOf(key) || !reflect.DeepEqual(got, key) {
			t.Fatalf("%s: Wrap gave %T, %v; want the key itself", kt, got, err)
		}
	}
	if !opensslsign.Enabled {
		t.Fatal("Enabled is false in a build with the openssl tag")
	}
	if lib := opensslsign.Library(); !strings.HasPrefix(lib, "OpenSSL 3.") {
		t.Fatalf("Library() = %q, want OpenSSL 3.x", lib)
	}
}

// TestSignConcurrent: pooled contexts are never shared by two signers at once.
func TestSignConcurrent(t *testing.T) {
	t.Parallel()
	_, k := wrapped(t)
	pub := k.Public().(*rsa.PublicKey)
	d := sha256.Sum256([]byte("concurrent"))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			for range 20 {
				var opts crypto.SignerOpts = crypto.SHA256
				if i%2 == 0 {
					opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
				}
				sig, err := k.Sign(rand.Reader, d[:], opts)
				if err == nil {
					if _, pss := opts.(*rsa.PSSOptions); pss {
						err = rsa.VerifyPSS(pub, crypto.SHA256, d[:], sig, &rsa.PSSOptions{SaltLength: 32})
					} else {
						err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := errors.Join(func() (es []error) {
		for e := range errs {
			es = append(es, e)
		}
		return es
	}()...); err != nil {
		t.Fatal(err)
	}
}

// TestWrapLeavesKeysInFIPSMode: under GODEBUG=fips140=on every signature must come from
// Go's validated module, so RSA keys stay with crypto/rsa. FIPS mode is fixed at start:
// the test runs itself again in a child process with it on.
func TestWrapLeavesKeysInFIPSMode(t *testing.T) {
	if os.Getenv("OPENSSLSIGN_FIPS_CHILD") == "1" {
		if !fips140.Enabled() {
			t.Fatal("child is not in FIPS mode")
		}
		key := pkitest.Key(t, pki.RSA2048)
		if got, err := opensslsign.Wrap(key); err != nil || got != key {
			t.Fatalf("Wrap in FIPS mode gave %T, %v; want the key itself", got, err)
		}
		return
	}
	if strings.Contains(runtime.Version(), "boringcrypto") {
		t.Skip("a BoringCrypto build cannot turn on Go's FIPS 140-3 mode (it panics at start)")
	}
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestWrapLeavesKeysInFIPSMode$", "-test.count", "1")
	cmd.Env = append(os.Environ(), "OPENSSLSIGN_FIPS_CHILD=1", "GODEBUG=fips140=on")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "PASS") {
		t.Fatalf("child in FIPS mode: %v\n%s", err, out)
	}
}

// TestSignLargeRSAKey: keys above maxDirectRSABits sign through an ordinary cgo call;
// their signatures verify too.
func TestSignLargeRSAKey(t *testing.T) {
	t.Parallel()
	rk := pkitest.Key(t, pki.RSA4096).(*rsa.PrivateKey)
	s, err := opensslsign.Wrap(rk)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*opensslsign.Key); !ok {
		t.Fatalf("Wrap gave %T, want *opensslsign.Key", s)
	}
	d := sha256.Sum256([]byte("handshake transcript"))
	opts := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	sig, err := s.Sign(rand.Reader, d[:], opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := rsa.VerifyPSS(&rk.PublicKey, crypto.SHA256, d[:], sig, opts); err != nil {
		t.Fatal(err)
	}
}
