//go:build openssl && cgo

package opensslsign

/*
#include <openssl/evp.h>
*/
import "C"

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/fips140"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"io"
	"runtime"
	"sync"
)

// ECKey is an ECDSA P-256 private key held by OpenSSL, whose P-256 signing is faster
// than Go's (about 21 µs against 33 µs here: bench/README.md, "hs"). It signs SHA-256
// digests, what TLS 1.3's ecdsa_secp256r1_sha256 and TLS 1.2's usual choice ask for;
// other digests go to Go's key. It is safe for concurrent use.
type ECKey struct {
	pub   *ecdsa.PublicKey
	goKey *ecdsa.PrivateKey
	pkey  *C.EVP_PKEY
	ctxs  sync.Pool // initialised signing contexts, as Key's
	size  int       // the largest DER signature
}

// wrapEC returns an ECKey for a P-256 key and any other key as it is. In FIPS 140-3
// mode every signature must come from Go's validated module, so keys stay with Go.
func wrapEC(ek *ecdsa.PrivateKey) (crypto.Signer, error) {
	if ek.Curve != elliptic.P256() || fips140.Enabled() {
		return ek, nil
	}
	der, err := x509.MarshalECPrivateKey(ek)
	if err != nil {
		return nil, fmt.Errorf("opensslsign: invalid ECDSA key: %w", err)
	}
	pkey, e := loadKey(C.EVP_PKEY_EC, der)
	if pkey == nil {
		return nil, fmt.Errorf("opensslsign: loading the ECDSA key: %w", sslError(e))
	}
	k := &ECKey{pub: &ek.PublicKey, goKey: ek, pkey: pkey, size: int(C.EVP_PKEY_get_size(pkey))}
	runtime.AddCleanup(k, func(p *C.EVP_PKEY) { C.EVP_PKEY_free(p) }, pkey)
	if err := k.selfTest(); err != nil {
		return nil, err
	}
	return k, nil
}

// Public returns the *ecdsa.PublicKey.
func (k *ECKey) Public() crypto.PublicKey { return k.pub }

// Sign returns an ASN.1 DER ECDSA signature of digest, as ecdsa.PrivateKey.Sign does.
// OpenSSL draws the nonce from its own generator (mixed with the key and the digest),
// so rand is not used for a SHA-256 digest.
func (k *ECKey) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts == nil || opts.HashFunc() != crypto.SHA256 || len(digest) != sha256.Size {
		return k.goKey.Sign(rand, digest, opts)
	}
	sc, err := takeCtx(&k.ctxs, func() (*C.EVP_PKEY_CTX, C.ulong) { return newECCtx(k.pkey) })
	if err != nil {
		return nil, err
	}
	sig, err := signPooled(&k.ctxs, sc, k.size, digest, true) // about 21 µs: direct.go
	runtime.KeepAlive(k)
	return sig, err
}

// selfTest signs once and verifies with Go, so a key OpenSSL read differently from Go
// fails at load, not in every handshake.
func (k *ECKey) selfTest() error {
	d := sha256.Sum256([]byte("tlsgate opensslsign self-test"))
	sig, err := k.Sign(nil, d[:], crypto.SHA256)
	if err != nil {
		return err
	}
	if !ecdsa.VerifyASN1(k.pub, d[:], sig) {
		return fmt.Errorf("opensslsign: self-test signature does not verify")
	}
	return nil
}
