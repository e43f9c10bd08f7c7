package clientauth

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"sync"
	"time"

	"tlsgate/internal/certfile"
)

// Identity is what tlsgate tells backends and logs about a client certificate. An
// Identity from IdentityOf may be shared with other callers: read it, never modify its
// slices.
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

// IdentityOf describes cert; a nil cert gives the zero Identity. Descriptions are kept
// by the certificate's DER (identityCache), so a client that reconnects or resumes is
// described once rather than on every connection and request.
func IdentityOf(cert *x509.Certificate) Identity {
	if cert == nil {
		return Identity{}
	}
	if id, ok := identities.get(cert.Raw); ok {
		return id
	}
	id := describe(cert)
	identities.put(cert.Raw, id)
	return id
}

// describe computes cert's Identity: the subject and issuer strings, the fingerprint's
// SHA-256 and the serial's hex were 1.6 % of a resumed mutual handshake's CPU (with
// SHA-NI; more without).
func describe(cert *x509.Certificate) Identity {
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

const (
	// identityCacheEntries bounds the cache: past it, an arbitrary entry makes room.
	identityCacheEntries = 1024
	// identityCacheMaxDER keeps large certificates out, so the cache holds at most
	// about identityCacheEntries × (4 KiB + the strings) ≈ 5 MiB however clients
	// choose their certificates.
	identityCacheMaxDER = 4096
)

// identityCache maps a certificate's DER to its Identity. The key is the whole DER, not
// a hash of it, so two certificates can never share an entry; an Identity is a pure
// function of the DER, so an entry never goes stale (verification, revocation and
// expiry are decided elsewhere, on every handshake).
type identityCache struct {
	mu sync.RWMutex
	m  map[string]Identity
}

var identities = &identityCache{m: make(map[string]Identity)}

func (c *identityCache) get(der []byte) (Identity, bool) {
	c.mu.RLock()
	id, ok := c.m[string(der)]
	c.mu.RUnlock()
	return id, ok
}

func (c *identityCache) put(der []byte, id Identity) {
	if len(der) > identityCacheMaxDER {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= identityCacheEntries {
		for k := range c.m { // map order: an arbitrary entry
			delete(c.m, k)
			break
		}
	}
	c.m[string(der)] = id
}

func (c *identityCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
