// Package pki mints certificates: keys, root and intermediate CAs, server and client
// leaves with the right key usage and EKU, and signed CRLs. This file is the in-memory
// core shared by `tlsgate pki`, `tlsgate demo` and the test CA (pkitest); it touches no
// files.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"time"
)

// KeyType names a key algorithm and size.
type KeyType string

// Key types.
const (
	ECDSAP256 KeyType = "ecdsa-p256"
	ECDSAP384 KeyType = "ecdsa-p384"
	RSA2048   KeyType = "rsa-2048"
	RSA4096   KeyType = "rsa-4096"
	Ed25519   KeyType = "ed25519"
)

// NewKey generates a private key of type kt.
func NewKey(kt KeyType) (crypto.Signer, error) {
	switch kt {
	case ECDSAP256, "":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case RSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	case Ed25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("unknown key type %q (want ecdsa-p256, ecdsa-p384, rsa-2048, rsa-4096 or ed25519)", kt)
}

// Usage is what a certificate is for.
type Usage int

// Usages.
const (
	UsageClient Usage = iota // EKU clientAuth
	UsageServer              // EKU serverAuth
	UsageCA                  // CA: keyCertSign + cRLSign
)

// Request describes a certificate to issue. Zero fields take the documented defaults.
type Request struct {
	CommonName string
	OU         []string
	DNS        []string
	IPs        []net.IP
	URIs       []*url.URL
	Emails     []string
	Usage      Usage
	// EKU overrides the EKU implied by Usage (tests use it for wrong-usage certificates).
	EKU []x509.ExtKeyUsage
	// KeyUsage, when non-zero, overrides the key usage implied by Usage.
	KeyUsage x509.KeyUsage
	// NotBefore defaults to now - 1 minute (clock skew); NotAfter to NotBefore + 397 days
	// for leaves (the CA/Browser Forum maximum), + 10 years for CAs.
	NotBefore, NotAfter time.Time
	// Key is the subject's key; nil generates one of KeyType.
	Key     crypto.Signer
	KeyType KeyType
	// CRLURL, when set, is written as the CRL distribution point.
	CRLURL string
	// OCSPURL, when set, is written as the OCSP responder (authority information access).
	OCSPURL string
	// Serial is the serial number; nil draws a random one.
	Serial *big.Int
	// Now is the issuance time; zero means time.Now.
	Now time.Time
}

// CA is an issuing certificate authority.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// Serial returns a random positive 127-bit serial number (RFC 5280 §4.1.2.2: at most
// 20 octets, unpredictable per CA/Browser Forum).
func Serial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	return n.Add(n, big.NewInt(1)), nil
}

func (r *Request) template() (*x509.Certificate, error) {
	serial := r.Serial
	if serial == nil {
		var err error
		if serial, err = Serial(); err != nil {
			return nil, err
		}
	}
	now := r.Now
	if now.IsZero() {
		now = time.Now()
	}
	nb, na := r.NotBefore, r.NotAfter
	if nb.IsZero() {
		nb = now.Add(-time.Minute)
	}
	if na.IsZero() {
		na = nb.AddDate(0, 0, 397)
		if r.Usage == UsageCA {
			na = nb.AddDate(10, 0, 0)
		}
	}
	t := &x509.Certificate{
		SerialNumber:   serial,
		Subject:        pkix.Name{CommonName: r.CommonName, OrganizationalUnit: r.OU},
		NotBefore:      nb,
		NotAfter:       na,
		DNSNames:       r.DNS,
		IPAddresses:    r.IPs,
		URIs:           r.URIs,
		EmailAddresses: r.Emails,
	}
	switch r.Usage {
	case UsageCA:
		t.IsCA, t.BasicConstraintsValid = true, true
		t.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	case UsageServer:
		t.KeyUsage = x509.KeyUsageDigitalSignature
		t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		t.BasicConstraintsValid = true
	default:
		t.KeyUsage = x509.KeyUsageDigitalSignature
		t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		t.BasicConstraintsValid = true
	}
	if r.EKU != nil {
		t.ExtKeyUsage = r.EKU
	}
	if r.KeyUsage != 0 {
		t.KeyUsage = r.KeyUsage
	}
	if r.CRLURL != "" {
		t.CRLDistributionPoints = []string{r.CRLURL}
	}
	if r.OCSPURL != "" {
		t.OCSPServer = []string{r.OCSPURL}
	}
	return t, nil
}

func (r *Request) key() (crypto.Signer, error) {
	if r.Key != nil {
		return r.Key, nil
	}
	return NewKey(r.KeyType)
}

// NewRoot makes a self-signed root CA.
func NewRoot(r Request) (*CA, error) {
	r.Usage = UsageCA
	t, err := r.template()
	if err != nil {
		return nil, err
	}
	k, err := r.key()
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, t, t, k.Public(), k)
	if err != nil {
		return nil, fmt.Errorf("creating root CA: %w", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: c, Key: k}, nil
}

// Issue signs a certificate for r and returns it with the subject's key.
func (ca *CA) Issue(r Request) (*x509.Certificate, crypto.Signer, error) {
	t, err := r.template()
	if err != nil {
		return nil, nil, err
	}
	k, err := r.key()
	if err != nil {
		return nil, nil, err
	}
	if t.SubjectKeyId, err = keyID(k.Public()); err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, t, ca.Cert, k.Public(), ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("issuing %q: %w", r.CommonName, err)
	}
	c, err := x509.ParseCertificate(der)
	return c, k, err
}

// keyID is a subject key identifier: the leftmost 160 bits of the SHA-256 of the
// SubjectPublicKeyInfo (RFC 7093 §2 method 1). Go sets one itself only for CAs.
func keyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	return sum[:20], nil
}

// Intermediate issues a subordinate CA.
func (ca *CA) Intermediate(r Request) (*CA, error) {
	r.Usage = UsageCA
	c, k, err := ca.Issue(r)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: c, Key: k}, nil
}

// CRL signs a CRL listing revoked, valid from thisUpdate to nextUpdate, and returns DER.
func (ca *CA) CRL(revoked []x509.RevocationListEntry, number int64, thisUpdate, nextUpdate time.Time) ([]byte, error) {
	t := &x509.RevocationList{
		RevokedCertificateEntries: revoked,
		Number:                    big.NewInt(number),
		ThisUpdate:                thisUpdate,
		NextUpdate:                nextUpdate,
	}
	der, err := x509.CreateRevocationList(rand.Reader, t, ca.Cert, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("signing CRL: %w", err)
	}
	return der, nil
}
