// Package certfile decodes and encodes certificates and private keys: PEM, DER and
// PKCS#12; PKCS#1, PKCS#8 and SEC1 keys; chain ordering; key↔certificate match. It is
// pure functions over []byte: it reads no files (callers name the file in their errors)
// and keeps no state.
package certfile

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"software.sslmate.com/src/go-pkcs12"
)

// Errors callers may branch on.
var (
	ErrEmpty          = errors.New("file is empty")
	ErrNoCertificate  = errors.New("no certificate found (expected PEM \"CERTIFICATE\" blocks, DER or PKCS#12)")
	ErrNoKey          = errors.New("no private key found (expected PKCS#1, PKCS#8 or SEC1, PEM or DER)")
	ErrEncryptedKey   = errors.New("private key is encrypted; decrypt it first (openssl pkey -in KEY -out KEY.plain)")
	ErrKeyMismatch    = errors.New("private key does not match the certificate's public key")
	ErrBadPassword    = errors.New("PKCS#12 password is wrong or the file is damaged")
	ErrUnsupportedKey = errors.New("unsupported key type (want RSA, ECDSA or Ed25519)")
)

// IsPEM reports whether data looks like PEM text.
func IsPEM(data []byte) bool { return bytes.Contains(data, []byte("-----BEGIN ")) }

// ParseCertificates returns every certificate in data, which is PEM (CERTIFICATE blocks,
// other blocks ignored) or DER (one or more concatenated certificates).
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, ErrEmpty
	}
	if !IsPEM(data) {
		certs, err := x509.ParseCertificates(data)
		if err != nil || len(certs) == 0 {
			return nil, ErrNoCertificate
		}
		return certs, nil
	}
	blocks, err := PEMBlocks(data)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for i, b := range blocks {
		if b.Type != "CERTIFICATE" && b.Type != "TRUSTED CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", i+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, ErrNoCertificate
	}
	return certs, nil
}

// ParsePrivateKey returns the first private key in data (PEM or DER; PKCS#1, PKCS#8 or
// SEC1).
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, ErrEmpty
	}
	if !IsPEM(data) {
		return parseKeyDER(data)
	}
	blocks, err := PEMBlocks(data)
	if err != nil {
		return nil, err
	}
	for _, b := range blocks {
		switch b.Type {
		case "ENCRYPTED PRIVATE KEY":
			return nil, ErrEncryptedKey
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
			if _, ok := b.Headers["DEK-Info"]; ok {
				return nil, ErrEncryptedKey
			}
			return parseKeyDER(b.Bytes)
		}
	}
	return nil, ErrNoKey
}

func parseKeyDER(der []byte) (crypto.Signer, error) {
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return signer(k)
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	return nil, ErrNoKey
}

func signer(k any) (crypto.Signer, error) {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, ErrUnsupportedKey
}

// IsPKCS12 reports whether data is not PEM and not DER certificates, so it should be
// tried as PKCS#12.
func IsPKCS12(data []byte) bool {
	if IsPEM(data) || len(data) == 0 {
		return false
	}
	_, err := x509.ParseCertificates(data)
	return err != nil
}

// ParsePKCS12 decodes a PKCS#12 file into its key, leaf and CA chain.
func ParsePKCS12(data []byte, password string) (crypto.Signer, []*x509.Certificate, error) {
	k, leaf, chain, err := pkcs12.DecodeChain(data, password)
	if err != nil {
		if errors.Is(err, pkcs12.ErrIncorrectPassword) {
			return nil, nil, ErrBadPassword
		}
		return nil, nil, fmt.Errorf("decoding PKCS#12: %w", err)
	}
	s, err := signer(k)
	if err != nil {
		return nil, nil, err
	}
	return s, append([]*x509.Certificate{leaf}, chain...), nil
}

// KeyMatches reports whether key is the private key of cert.
func KeyMatches(cert *x509.Certificate, key crypto.Signer) bool {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}

// OrderChain returns certs with the certificate matching key first, followed by its
// issuers in order; certificates that do not belong to the chain are dropped.
func OrderChain(certs []*x509.Certificate, key crypto.Signer) ([]*x509.Certificate, error) {
	var leaf *x509.Certificate
	for _, c := range certs {
		if KeyMatches(c, key) {
			leaf = c
			break
		}
	}
	if leaf == nil {
		return nil, ErrKeyMismatch
	}
	chain := []*x509.Certificate{leaf}
	for cur := leaf; len(chain) <= len(certs); {
		next := issuerOf(cur, certs)
		if next == nil || next == cur {
			break
		}
		chain = append(chain, next)
		cur = next
	}
	return chain, nil
}

// issuerOf finds the certificate among certs that signed c.
func issuerOf(c *x509.Certificate, certs []*x509.Certificate) *x509.Certificate {
	for _, p := range certs {
		if p != c && bytes.Equal(p.RawSubject, c.RawIssuer) && c.CheckSignatureFrom(p) == nil {
			return p
		}
	}
	return nil
}

// ServerPair builds a tls.Certificate from certificate data (PEM, DER or PKCS#12) and key
// data (empty for PKCS#12). The chain is put in order and the key must match the leaf.
// Errors about the key data start with "key: ".
func ServerPair(certData, keyData []byte, password string) (tls.Certificate, error) {
	if IsPKCS12(certData) {
		key, certs, err := ParsePKCS12(certData, password)
		if err != nil {
			return tls.Certificate{}, err
		}
		return Assemble(certs, key)
	}
	certs, err := ParseCertificates(certData)
	if err != nil {
		return tls.Certificate{}, err
	}
	key, err := ParsePrivateKey(keyData)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("key: %w", err)
	}
	return Assemble(certs, key)
}

// Assemble orders certs into the chain of key's certificate and returns it as a
// tls.Certificate with Leaf set.
func Assemble(certs []*x509.Certificate, key crypto.Signer) (tls.Certificate, error) {
	chain, err := OrderChain(certs, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	tc := tls.Certificate{PrivateKey: key, Leaf: chain[0]}
	for _, c := range chain {
		tc.Certificate = append(tc.Certificate, c.Raw)
	}
	return tc, nil
}

// EncodePEM returns the certificates as PEM CERTIFICATE blocks.
func EncodePEM(certs ...*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

// EncodeKeyPEM returns key as a PKCS#8 PEM block.
func EncodeKeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// EncodeDERAsPEM wraps one DER certificate in a PEM CERTIFICATE block.
func EncodeDERAsPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// KeyName describes a public key as "RSA 2048", "ECDSA P-256" or "Ed25519".
func KeyName(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", pub)
}
