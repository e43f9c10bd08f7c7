// Package certstore builds the runtime certificate store from a validated config: server
// identities (leaf + chain + key) and CA bundles with their CRLs, by id. A Store is an
// immutable snapshot: reload builds a new one and swaps it, so the handshake path reads
// it without locks. It reads files but does not watch them (server does) and knows
// nothing of listeners.
package certstore

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"tlsgate/internal/certfile"
	"tlsgate/internal/config"
	"tlsgate/internal/revocation"
)

// Server is a server identity.
type Server struct {
	ID   string
	Cert tls.Certificate // Leaf is set
}

// CA is a CA bundle with its CRLs.
type CA struct {
	ID    string
	Certs []*x509.Certificate
	Pool  *x509.CertPool
	CRLs  *revocation.Set // nil when no CRL is configured
}

// Store is one immutable snapshot of every certificate of a config.
type Store struct {
	Servers map[string]*Server
	CAs     map[string]*CA
}

// Build loads every certificate, key, CA bundle and CRL the config references. It
// returns every error found, each naming the certificate id and the file.
func Build(cfg *config.Config) (*Store, error) {
	s := &Store{Servers: map[string]*Server{}, CAs: map[string]*CA{}}
	var errs []error
	for i := range cfg.Certificates {
		c := &cfg.Certificates[i]
		var err error
		if c.IsCA() {
			s.CAs[c.ID], err = loadCA(cfg, c)
		} else {
			s.Servers[c.ID], err = loadServer(cfg, c)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("certificate %q: %w", c.ID, err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// Files returns every file the config's certificates reference, for change watching.
func Files(cfg *config.Config) []string {
	var fs []string
	for _, c := range cfg.Certificates {
		for _, f := range append([]string{c.Cert, c.Key, c.CA}, c.CRL...) {
			if f != "" {
				fs = append(fs, cfg.Resolve(f))
			}
		}
	}
	return fs
}

func read(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err // *PathError names the file
	}
	return b, nil
}

func loadServer(cfg *config.Config, c *config.Certificate) (*Server, error) {
	certPath, keyPath := cfg.Resolve(c.Cert), cfg.Resolve(c.Key)
	certData, err := read(certPath)
	if err != nil {
		return nil, err
	}
	var keyData []byte
	if keyPath != "" {
		if keyData, err = read(keyPath); err != nil {
			return nil, err
		}
	} else if !certfile.IsPKCS12(certData) {
		return nil, fmt.Errorf("%s: key is required unless cert is a PKCS#12 file", certPath)
	}
	tc, err := certfile.ServerPair(certData, keyData, c.Password)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certPath, err)
	}
	return &Server{ID: c.ID, Cert: tc}, nil
}

func loadCA(cfg *config.Config, c *config.Certificate) (*CA, error) {
	path := cfg.Resolve(c.CA)
	data, err := read(path)
	if err != nil {
		return nil, err
	}
	certs, err := certfile.ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	ca := &CA{ID: c.ID, Certs: certs, Pool: x509.NewCertPool()}
	for i, cert := range certs {
		// A non-CA certificate in a CA bundle would become a trust anchor that accepts
		// itself as a client certificate; refuse it rather than guess (S6).
		if !cert.IsCA {
			return nil, fmt.Errorf("%s: certificate %d (%s) is not a CA certificate; a CA bundle holds only CA certificates", path, i+1, cert.Subject)
		}
		ca.Pool.AddCert(cert)
	}
	if len(c.CRL) == 0 {
		return ca, nil
	}
	var crls []*revocation.CRL
	for _, f := range c.CRL {
		p := cfg.Resolve(f)
		b, err := read(p)
		if err != nil {
			return nil, err
		}
		crl, err := revocation.Parse(b, certs)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		crls = append(crls, crl)
	}
	ca.CRLs = revocation.NewSet(crls, c.CRLPolicy == config.CRLFailOpen)
	return ca, nil
}
