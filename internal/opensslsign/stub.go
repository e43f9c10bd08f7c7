//go:build !openssl || !cgo

package opensslsign

import "crypto"

// Enabled reports whether this binary signs RSA and ECDSA P-256 through OpenSSL (built
// with cgo and the openssl tag).
const Enabled = false

// Wrap returns key unchanged: this binary was built without OpenSSL.
func Wrap(key crypto.Signer) (crypto.Signer, error) { return key, nil }

// Library is "" here: no OpenSSL in this binary.
func Library() string { return "" }
