// Package opensslsign moves the server's RSA and ECDSA P-256 signatures into the system's
// OpenSSL libcrypto (3.x), as nginx and HAProxy do: on CPUs with AVX-512 IFMA OpenSSL
// signs RSA-2048 about twice as fast as the BoringCrypto module and three times as fast
// as Go's crypto/rsa, and the signature is most of a full RSA handshake's cost.
//
// Wrap turns an *rsa.PrivateKey into a crypto.Signer whose key lives in C memory (an
// EVP_PKEY, freed when the Signer is collected). It signs RSASSA-PSS (TLS 1.3; salt
// length equal to the hash, or the maximum) and PKCS #1 v1.5 (TLS 1.2) over SHA-1,
// SHA-256, SHA-384 or SHA-512 digests; anything else is refused with an error.
// Keys crypto/rsa would refuse to sign with (under 1024 bits) and every key in Go's
// FIPS 140-3 mode (GODEBUG=fips140=on) stay with crypto/rsa, so its refusals stand.
// Decrypt (TLS 1.2's RSA key exchange, which only the tls12-compat policy offers) stays
// with Go's crypto/rsa, whose PKCS #1 v1.5 session-key decryption is constant-time
// against Bleichenbacher-style oracles; the Signer keeps the Go key for it.
//
// The binding needs cgo and the build tag openssl (Debian: libssl-dev to build,
// libcrypto.so.3 to run); `make build` sets both. Without them Wrap returns every key
// as it is and Enabled is false, so the package costs nothing where OpenSSL is absent.
// ECDSA P-256 keys (ECKey) sign SHA-256 digests in OpenSSL too, about 21 µs against Go's
// 33 µs here; other digests, other curves and Ed25519 stay with Go (bench/README.md).
// Signatures with RSA keys up to 2048 bits and with P-256 keys are called on the thread's
// own stack rather than as cgo calls, so the goroutine keeps its P (direct.go). It knows
// nothing of certificates or TLS configuration; certstore wraps the keys it loads.
package opensslsign
