package certfile

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
)

// Bundle is everything one file holds: certificates in file order, and a private key.
type Bundle struct {
	Format string // "PEM", "DER" or "PKCS#12"
	Certs  []*x509.Certificate
	Key    crypto.Signer // nil when the file holds none
	P12    *P12Info      // PKCS#12: how the file is encrypted (nil when unreadable)
}

// Decode reads any certificate file: PEM (certificates and/or a key), DER (certificates
// or a key) or PKCS#12 (with password).
func Decode(data []byte, password string) (*Bundle, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, ErrEmpty
	}
	if IsPEM(data) {
		b := &Bundle{Format: "PEM"}
		certs, err := ParseCertificates(data)
		if err != nil && !errors.Is(err, ErrNoCertificate) {
			return nil, err
		}
		b.Certs = certs
		key, err := ParsePrivateKey(data)
		switch {
		case err == nil:
			b.Key = key
		case errors.Is(err, ErrEncryptedKey):
			return nil, err
		}
		if b.Key == nil && len(b.Certs) == 0 {
			return nil, ErrNoCertificate // every block decoded (PEMBlocks): none is either
		}
		return b, nil
	}
	if certs, err := x509.ParseCertificates(data); err == nil && len(certs) > 0 {
		return &Bundle{Format: "DER", Certs: certs}, nil
	}
	if key, err := parseKeyDER(data); err == nil {
		return &Bundle{Format: "DER", Key: key}, nil
	}
	key, certs, err := ParsePKCS12(data, password)
	if err != nil {
		if errors.Is(err, ErrBadPassword) {
			return nil, err
		}
		return nil, errors.New("not PEM, DER or PKCS#12: no certificate or key found")
	}
	b := &Bundle{Format: "PKCS#12", Certs: certs, Key: key}
	if info, err := P12Encryption(data); err == nil {
		b.P12 = &info
	}
	return b, nil
}

// InOrder reports whether each certificate is signed by the next one.
func InOrder(certs []*x509.Certificate) bool {
	for i := 0; i+1 < len(certs); i++ {
		if certs[i].CheckSignatureFrom(certs[i+1]) != nil {
			return false
		}
	}
	return true
}
