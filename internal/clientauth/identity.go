package clientauth

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"time"

	"tlsgate/internal/certfile"
)

// Identity is what tlsgate tells backends and logs about a client certificate.
type Identity struct {
	Subject     string
	Issuer      string
	Serial      string // upper-case hex of even length, as openssl prints it (certfile.SerialHex)
	Fingerprint string // SHA-256 of the DER, lower-case hex
	NotBefore   time.Time
	NotAfter    time.Time
	URIs        []string
	DNSNames    []string
	Emails      []string
}

// IdentityOf describes cert; a nil cert gives the zero Identity.
func IdentityOf(cert *x509.Certificate) Identity {
	if cert == nil {
		return Identity{}
	}
	sum := sha256.Sum256(cert.Raw)
	id := Identity{
		Subject:     cert.Subject.String(),
		Issuer:      cert.Issuer.String(),
		Serial:      certfile.SerialHex(cert.SerialNumber),
		Fingerprint: hex.EncodeToString(sum[:]),
		NotBefore:   cert.NotBefore,
		NotAfter:    cert.NotAfter,
		DNSNames:    cert.DNSNames,
		Emails:      cert.EmailAddresses,
	}
	for _, u := range cert.URIs {
		id.URIs = append(id.URIs, u.String())
	}
	return id
}
