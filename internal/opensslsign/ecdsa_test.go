//go:build openssl && cgo

package opensslsign_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"io"
	"sync"
	"testing"

	"tlsgate/internal/opensslsign"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
)

// TestWrapECDSA: a P-256 key signs in OpenSSL, and Go verifies what it signs with the
// key's public half; digests other than SHA-256 are signed by Go's key.
func TestWrapECDSA(t *testing.T) {
	t.Parallel()
	key := pkitest.Key(t, pki.ECDSAP256).(*ecdsa.PrivateKey)
	s, err := opensslsign.Wrap(key)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*opensslsign.ECKey); !ok {
		t.Fatalf("Wrap gave %T, want *opensslsign.ECKey", s)
	}
	if !key.PublicKey.Equal(s.Public()) {
		t.Fatal("Public() is not the key's public half")
	}
	d256 := sha256.Sum256([]byte("transcript"))
	d384 := sha512.Sum384([]byte("transcript"))
	for _, tc := range []struct {
		name   string
		digest []byte
		opts   crypto.SignerOpts
	}{
		{"SHA-256 (OpenSSL)", d256[:], crypto.SHA256},
		{"SHA-384 (Go)", d384[:], crypto.SHA384},
		{"short digest (Go, as an unwrapped key)", d256[:16], crypto.SHA256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Where Go's own key refuses (Go 1.27 refuses a digest shorter than its
			// hash), the wrapped key refuses too.
			if _, goErr := key.Sign(rand.Reader, tc.digest, tc.opts); goErr != nil {
				if _, err := s.Sign(rand.Reader, tc.digest, tc.opts); err == nil {
					t.Fatalf("Go's key refuses (%v), the wrapped key signs", goErr)
				}
				return
			}
			for range 20 { // a random nonce each time: every signature must verify
				sig, err := s.Sign(rand.Reader, tc.digest, tc.opts)
				if err != nil {
					t.Fatal(err)
				}
				if !ecdsa.VerifyASN1(&key.PublicKey, tc.digest, sig) {
					t.Fatalf("signature %x does not verify", sig)
				}
			}
		})
	}
}

// TestECDSAConcurrent: pooled contexts are never shared by two signers at once.
func TestECDSAConcurrent(t *testing.T) {
	t.Parallel()
	key := pkitest.Key(t, pki.ECDSAP256).(*ecdsa.PrivateKey)
	s, err := opensslsign.Wrap(key)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("concurrent"))
	var wg sync.WaitGroup
	bad := make(chan []byte, 8)
	for range 8 {
		wg.Go(func() {
			for range 50 {
				sig, err := s.Sign(nil, d[:], crypto.SHA256)
				if err != nil || !ecdsa.VerifyASN1(&key.PublicKey, d[:], sig) {
					bad <- sig
					return
				}
			}
		})
	}
	wg.Wait()
	close(bad)
	if sig, ok := <-bad; ok {
		t.Fatalf("a concurrent signature failed: %x", sig)
	}
}

// TestHandshakeECDSA: crypto/tls clients verify the wrapped P-256 key's signatures in
// TLS 1.3 and TLS 1.2 handshakes.
func TestHandshakeECDSA(t *testing.T) {
	t.Parallel()
	ca := pkitest.New(t, "opensslsign ecdsa root", pki.ECDSAP256)
	leaf := ca.Issue("localhost", pkitest.Server("localhost", "127.0.0.1"))
	s, err := opensslsign.Wrap(leaf.Key)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*opensslsign.ECKey); !ok {
		t.Fatalf("Wrap gave %T, want *opensslsign.ECKey", s)
	}
	tc := leaf.TLS()
	tc.PrivateKey = s
	addr := serveOK(t, &tls.Config{Certificates: []tls.Certificate{tc}, MinVersion: tls.VersionTLS12})
	for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost",
				MinVersion: v, MaxVersion: v})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if line, err := io.ReadAll(c); err != nil || string(line) != "ok\n" {
				t.Fatalf("read %q, %v", line, err)
			}
		})
	}
}
