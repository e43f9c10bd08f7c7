// Package certstore builds the runtime certificate store from a validated config: server
// identities (leaf + chain + key) and CA bundles with their CRLs, by id. A Store is an
// immutable snapshot: reload builds a new one and swaps it, so the handshake path reads
// it without locks. It reads files but does not watch them (server does) and knows
// nothing of listeners.
package certstore

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"

	"tlsgate/internal/certfile"
	"tlsgate/internal/config"
	"tlsgate/internal/opensslsign"
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
	// OCSP checks client certificates with their responders; nil when off.
	OCSP *revocation.OCSP
	// crlFiles are the CRLs of the entry's crl: files, by field, for lint.
	crlFiles []crlFile
}

// crlFile is the CRLs one crl: file of a CA entry holds.
type crlFile struct {
	field, path string
	crls        []*revocation.CRL
}

// lintCRLs warns about crl: files already past their NextUpdate: under fail_closed every
// client of that CA is refused with crl_unavailable until a fresh CRL is loaded, under
// fail_open their revocation is not checked. check said ok for such a config.
func lintCRLs(ca *CA, policy config.CRLPolicy, now time.Time) (fields, warnings []string) {
	for _, f := range ca.crlFiles {
		for _, l := range f.crls {
			if !l.Stale(now) {
				continue
			}
			effect := "every client it issued is refused with crl_unavailable (crl_policy fail_closed)"
			if policy == config.CRLFailOpen {
				effect = "its clients' revocation is not checked (crl_policy fail_open)"
			}
			fields = append(fields, f.field)
			warnings = append(warnings, fmt.Sprintf("the CRL of %q in %s is past its next update (%s): %s until a fresh CRL is loaded", l.List.Issuer, f.path, l.List.NextUpdate.UTC().Format(time.RFC3339), effect))
		}
	}
	return fields, warnings
}

// Store is one immutable snapshot of every certificate of a config.
type Store struct {
	Servers map[string]*Server
	CAs     map[string]*CA
	// Warnings are lint findings that do not stop the config from loading: chain
	// order, missing intermediates, weak keys, expiry soon.
	Warnings config.Problems
}

// Build loads every certificate, key, CA bundle and CRL the config references. It
// returns config.Problems: every file that failed, with the config line naming it.
func Build(cfg *config.Config, now time.Time) (*Store, error) {
	s := &Store{Servers: map[string]*Server{}, CAs: map[string]*CA{}}
	var ps config.Problems
	// CA bundles first: server chains are linted against them and the system roots
	// (private PKIs often use one CA for both sides).
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	type loaded struct {
		field string
		err   error
	}
	cas := map[int]loaded{}
	for i := range cfg.Certificates {
		if c := &cfg.Certificates[i]; c.IsCA() {
			ca, field, err := loadCA(cfg, c)
			cas[i] = loaded{field, err}
			if err == nil {
				s.CAs[c.ID] = ca
				for _, cert := range ca.Certs {
					roots.AddCert(cert)
				}
			}
		}
	}
	for i := range cfg.Certificates {
		c := &cfg.Certificates[i]
		var err error
		var field string
		var warnings []string
		if c.IsCA() {
			field, err = cas[i].field, cas[i].err
			if err == nil {
				field, warnings = "ca", certfile.LintCA(s.CAs[c.ID].Certs, now)
			}
		} else {
			var sv *Server
			var given []*x509.Certificate
			sv, given, field, err = loadServer(cfg, c)
			if err == nil {
				s.Servers[c.ID] = sv
				field, warnings = "cert", certfile.LintServer(given, sv.Cert.PrivateKey.(crypto.Signer), roots, now)
			}
		}
		path := fmt.Sprintf("certificates[%d].%s", i, field)
		if err != nil {
			ps = append(ps, cfg.Problem(path, err.Error()))
		}
		for _, w := range warnings {
			s.Warnings = append(s.Warnings, cfg.Problem(path, "warning: "+w))
		}
		if ca := s.CAs[c.ID]; c.IsCA() && ca != nil {
			fields, ws := lintCRLs(ca, c.CRLPolicy, now)
			for j, w := range ws {
				s.Warnings = append(s.Warnings, cfg.Problem(fmt.Sprintf("certificates[%d].%s", i, fields[j]), "warning: "+w))
			}
		}
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return s, nil
}

// staple returns the cached OCSP response for a server certificate while it is good
// and current, else nil (the handshake goes on without a staple).
func staple(cfg *config.Config, tc tls.Certificate, now time.Time) []byte {
	if len(tc.Certificate) < 2 {
		return nil
	}
	b, err := os.ReadFile(cfg.OCSPCache(tc.Certificate[0]))
	if err != nil {
		return nil
	}
	issuer, err := x509.ParseCertificate(tc.Certificate[1])
	if err != nil {
		return nil
	}
	r, err := ocsp.ParseResponseForCert(b, tc.Leaf, issuer)
	if err != nil || r.Status != ocsp.Good || (!r.NextUpdate.IsZero() && now.After(r.NextUpdate)) {
		return nil
	}
	return b
}

// FetchURLs are the CRL URLs to fetch for a CA entry: its crl_urls, and with
// crl_fetch_cdp the distribution points its certificates name.
func FetchURLs(c *config.Certificate, bundle []*x509.Certificate) []string {
	urls := slices.Clone(c.CRLURLs)
	if c.CRLFetchCDP {
		for _, cert := range bundle {
			for _, u := range cert.CRLDistributionPoints {
				if !slices.Contains(urls, u) && (strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://")) {
					urls = append(urls, u)
				}
			}
		}
	}
	return urls
}

// KeepOCSP carries the OCSP checkers (and their cached answers) of prev over to the CA
// bundles of s that are unchanged, so a reload does not send every client's certificate
// to its responder again.
func (s *Store) KeepOCSP(prev *Store) {
	if prev == nil {
		return
	}
	for id, ca := range s.CAs {
		old := prev.CAs[id]
		if ca.OCSP == nil || old == nil || old.OCSP == nil || old.OCSP.FailOpen != ca.OCSP.FailOpen || !sameCerts(old.Certs, ca.Certs) {
			continue
		}
		ca.OCSP = old.OCSP
	}
}

func sameCerts(a, b []*x509.Certificate) bool {
	return slices.EqualFunc(a, b, func(x, y *x509.Certificate) bool { return x.Equal(y) })
}

// Files returns every file the config's certificates reference, for change watching.
func Files(cfg *config.Config) []string {
	var fs []string
	for _, c := range cfg.Certificates {
		for _, f := range append([]string{c.Cert, c.Key, c.CA, c.PasswordFile}, c.CRL...) {
			if f != "" {
				fs = append(fs, cfg.Resolve(f))
			}
		}
	}
	return fs
}

func read(cfg *config.Config, path string) ([]byte, error) {
	b, err := cfg.ReadFile(path)
	if err != nil {
		return nil, err // *PathError names the file
	}
	return b, nil
}

// loadServer loads a server identity and returns the certificates as the file gave
// them (for lint); on error it names the config field at fault.
func loadServer(cfg *config.Config, c *config.Certificate) (*Server, []*x509.Certificate, string, error) {
	certPath, keyPath := cfg.Resolve(c.Cert), cfg.Resolve(c.Key)
	certData, err := read(cfg, certPath)
	if err != nil {
		return nil, nil, "cert", err
	}
	var certs []*x509.Certificate
	var key crypto.Signer
	switch {
	case certfile.IsPKCS12(certData):
		password, err := cfg.Password(c)
		if err != nil {
			return nil, nil, "password_file", err
		}
		if key, certs, err = certfile.ParsePKCS12(certData, password); err != nil {
			return nil, nil, "cert", fmt.Errorf("%s: %w", certPath, err)
		}
	case keyPath == "":
		return nil, nil, "key", fmt.Errorf("required unless %s is a PKCS#12 file", certPath)
	default:
		if certs, err = certfile.ParseCertificates(certData); err != nil {
			return nil, nil, "cert", fmt.Errorf("%s: %w", certPath, err)
		}
		keyData, err := read(cfg, keyPath)
		if err != nil {
			return nil, nil, "key", err
		}
		if key, err = certfile.ParsePrivateKey(keyData); err != nil {
			return nil, nil, "key", fmt.Errorf("%s: %w", keyPath, err)
		}
	}
	tc, err := certfile.Assemble(certs, key)
	if err != nil {
		return nil, nil, "key", fmt.Errorf("%s: %w in %s", keyPath, err, certPath)
	}
	// With OpenSSL linked (make build), RSA and ECDSA P-256 keys sign there (RSA 1.8x
	// faster than BoringCrypto, 2.6x than Go; P-256 faster than Go). Other keys and other
	// builds keep the key as it is.
	if tc.PrivateKey, err = opensslsign.Wrap(key); err != nil {
		return nil, nil, "key", fmt.Errorf("%s: %w", keyPath, err)
	}
	if c.OCSPStaple {
		tc.OCSPStaple = staple(cfg, tc, time.Now())
	}
	return &Server{ID: c.ID, Cert: tc}, certs, "", nil
}

// loadCA loads a CA bundle and its CRLs; on error it also names the config field.
func loadCA(cfg *config.Config, c *config.Certificate) (*CA, string, error) {
	path := cfg.Resolve(c.CA)
	data, err := read(cfg, path)
	if err != nil {
		return nil, "ca", err
	}
	certs, err := certfile.ParseCertificates(data)
	if err != nil {
		return nil, "ca", fmt.Errorf("%s: %w", path, err)
	}
	ca := &CA{ID: c.ID, Certs: certs, Pool: x509.NewCertPool()}
	if c.OCSP {
		ca.OCSP = &revocation.OCSP{Client: http.DefaultClient, Timeout: 3 * time.Second, FailOpen: c.OCSPPolicy == config.CRLFailOpen, Now: time.Now}
	}
	for i, cert := range certs {
		// A non-CA certificate in a CA bundle would become a trust anchor that accepts
		// itself as a client certificate; refuse it rather than guess (S6).
		if !cert.IsCA {
			return nil, "ca", fmt.Errorf("%s: certificate %d (%s) is not a CA certificate; a CA bundle holds only CA certificates", path, i+1, cert.Subject)
		}
		ca.Pool.AddCert(cert)
	}
	files := slices.Clone(c.CRL)
	for _, u := range FetchURLs(c, certs) {
		// A fetched CRL counts once it is in the cache; until then (or if it was never
		// fetched) the policy decides, as for a stale CRL.
		if _, err := os.Stat(cfg.CRLCache(u)); err == nil {
			files = append(files, cfg.CRLCache(u))
		}
	}
	if len(files)+len(c.CRLURLs) == 0 && !c.CRLFetchCDP {
		return ca, "", nil
	}
	var crls []*revocation.CRL
	for i, f := range files {
		field := fmt.Sprintf("crl[%d]", i)
		p := f
		if i < len(c.CRL) {
			p = cfg.Resolve(f)
		} else {
			field = "crl_urls"
		}
		b, err := read(cfg, p)
		if err != nil {
			return nil, field, err
		}
		cs, err := revocation.ParseFile(b, certs)
		if err != nil {
			return nil, field, fmt.Errorf("%s: %w", p, err)
		}
		crls = append(crls, cs...)
		if i < len(c.CRL) {
			ca.crlFiles = append(ca.crlFiles, crlFile{field, p, cs})
		}
	}
	if err := onlyForeignCRLs(crls, c); err != nil {
		return nil, "crl[0]", fmt.Errorf("%s: %w", cfg.Resolve(c.CRL[0]), err)
	}
	ca.CRLs = revocation.NewSet(crls, c.CRLPolicy == config.CRLFailOpen)
	return ca, "", nil
}

// onlyForeignCRLs refuses crl: files none of which is signed by a CA of the bundle. A
// CRL from outside the bundle may belong to an intermediate that clients send (checked
// when one is seen), but when no CA of the bundle has a CRL at all, the files are almost
// surely another CA's, and every client the bundle issued directly would be refused
// with crl_unavailable at run time (fail closed). check and serve refuse it instead.
func onlyForeignCRLs(crls []*revocation.CRL, c *config.Certificate) error {
	if len(c.CRL) == 0 || len(crls) == 0 || slices.ContainsFunc(crls, func(l *revocation.CRL) bool { return l.Issuer != nil }) {
		return nil
	}
	return fmt.Errorf("the CRL of %q is not signed by any CA of this bundle, and no CRL is: clients would be refused with crl_unavailable (put the CA that signed it in %s, or give the bundle's own CRL)", crls[0].List.Issuer, c.CA)
}
