//go:build openssl && cgo

package opensslsign

import (
	"crypto"
	"crypto/rsa"
	"fmt"
)

// variant numbers the signature kinds a Key keeps contexts for: padding × hash × salt.
type variant int

const (
	numHashes   = 4
	numVariants = 3 * numHashes // PKCS #1 v1.5; PSS salt = hash; PSS salt = maximum
)

// OpenSSL's RSA_PSS_SALTLEN_DIGEST and RSA_PSS_SALTLEN_MAX.
const (
	saltDigest = -1
	saltMax    = -3
)

var hashes = [numHashes]crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512}

// variantOf maps a crypto/tls or crypto/rsa signing request to a variant, refusing what
// OpenSSL would sign differently from crypto/rsa or what this package does not offer.
func variantOf(opts crypto.SignerOpts, digestLen int) (variant, error) {
	if opts == nil {
		return 0, fmt.Errorf("opensslsign: no signer options (hash) given")
	}
	h := opts.HashFunc()
	hi := -1
	for i, x := range hashes {
		if x == h {
			hi = i
		}
	}
	if hi < 0 {
		return 0, fmt.Errorf("opensslsign: unsupported hash %v (SHA-1, SHA-256, SHA-384 and SHA-512 are)", h)
	}
	if digestLen != h.Size() {
		return 0, fmt.Errorf("opensslsign: digest is %d bytes, %v needs %d", digestLen, h, h.Size())
	}
	pss, ok := opts.(*rsa.PSSOptions)
	if !ok {
		return variant(hi), nil
	}
	switch {
	case pss.SaltLength == rsa.PSSSaltLengthEqualsHash || pss.SaltLength == h.Size():
		return variant(numHashes + hi), nil
	case pss.SaltLength == rsa.PSSSaltLengthAuto:
		return variant(2*numHashes + hi), nil
	}
	return 0, fmt.Errorf("opensslsign: unsupported PSS salt length %d (the hash's length %d, PSSSaltLengthEqualsHash or PSSSaltLengthAuto are)", pss.SaltLength, h.Size())
}

// params returns the variant's padding (1 for PSS), hash bits and OpenSSL salt length.
func (v variant) params() (pss, bits, salt int) {
	bits = hashes[int(v)%numHashes].Size() * 8
	switch int(v) / numHashes {
	case 1:
		return 1, bits, saltDigest
	case 2:
		return 1, bits, saltMax
	}
	return 0, bits, 0
}
