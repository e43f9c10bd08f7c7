// Package revocation loads CRLs, checks each one's signature once against its issuer,
// indexes revoked serials by issuer, and answers "is this certificate revoked?" under a
// freshness policy (fail closed or fail open when a CRL is past NextUpdate). It reads no
// files: callers pass bytes and a time. Its one network client is OCSP (ocsp.go).
package revocation

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Errors returned by Set.Check.
var (
	// ErrRevoked: the certificate's serial is listed in a CRL of its issuer.
	ErrRevoked = errors.New("certificate is revoked")
	// ErrUnavailable: no current CRL covers the certificate's issuer and the policy is
	// fail closed.
	ErrUnavailable = errors.New("no current CRL for the certificate's issuer")
	// ErrOCSPUnavailable: the OCSP responder could not vouch for the certificate and the
	// policy is fail closed.
	ErrOCSPUnavailable = errors.New("no OCSP answer for the certificate")
)

// CRL is one parsed CRL. Issuer is the certificate its signature was checked against,
// or nil while its issuer (an intermediate outside the CA bundle) has not been seen.
type CRL struct {
	List    *x509.RevocationList
	Issuer  *x509.Certificate
	revoked map[string]int // serial bytes → index in List.RevokedCertificateEntries
	scope   scope          // which of the issuer's certificates it covers (scope.go)
}

// ParseFile decodes every CRL of a file: PEM with one or more "X509 CRL" blocks, or one
// DER CRL. Each is checked as Parse does.
func ParseFile(data []byte, issuers []*x509.Certificate) ([]*CRL, error) {
	if !bytes.Contains(data, []byte("-----BEGIN")) {
		c, err := Parse(data, issuers)
		if err != nil {
			return nil, err
		}
		return []*CRL{c}, nil
	}
	blocks, err := pemBlocks(data)
	if err != nil {
		return nil, err
	}
	var out []*CRL
	for _, b := range blocks {
		c, err := parseBlock(b, issuers)
		if err != nil {
			return nil, fmt.Errorf("CRL %d: %w", len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no CRL found (expected PEM \"X509 CRL\" blocks or DER)")
	}
	return out, nil
}

// pemBegin starts a PEM block.
var pemBegin = []byte("-----BEGIN ")

// pemBlocks decodes every PEM block of data strictly, as certfile.PEMBlocks does
// (revocation imports no sibling package): every BEGIN line must start a block that
// decodes, and only white space may follow the last one. encoding/pem alone skips a
// damaged block, so a CRL file cut mid-block would lose its last CRL silently.
func pemBlocks(data []byte) ([]*pem.Block, error) {
	var blocks []*pem.Block
	rest := data
	for {
		i := bytes.Index(rest, pemBegin)
		if i < 0 {
			break
		}
		b, after := pem.Decode(rest[i:])
		if b == nil || bytes.Count(rest[i:len(rest)-len(after)], pemBegin) != 1 {
			return nil, fmt.Errorf("PEM block %d is damaged or truncated (a BEGIN line without its END line, or bad base64)", len(blocks)+1)
		}
		blocks = append(blocks, b)
		rest = after
	}
	if len(blocks) > 0 && len(bytes.TrimSpace(rest)) > 0 {
		return nil, fmt.Errorf("PEM block %d (the last) is followed by data that is not PEM (a truncated BEGIN line or garbage)", len(blocks))
	}
	return blocks, nil
}

// Parse decodes a PEM or DER CRL and checks its signature against the certificates of
// issuers with the CRL's issuer name; when one has that name, one must have signed it.
func Parse(data []byte, issuers []*x509.Certificate) (*CRL, error) {
	if b, _ := pem.Decode(data); b != nil {
		return parseBlock(b, issuers)
	}
	return parseDER(data, issuers)
}

func parseBlock(b *pem.Block, issuers []*x509.Certificate) (*CRL, error) {
	if b.Type != "X509 CRL" {
		return nil, fmt.Errorf("PEM block is %q, want \"X509 CRL\"", b.Type)
	}
	return parseDER(b.Bytes, issuers)
}

func parseDER(der []byte, issuers []*x509.Certificate) (*CRL, error) {
	if len(bytes.TrimSpace(der)) == 0 {
		return nil, errors.New("file is empty")
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("parsing CRL: %w", err)
	}
	sc, err := parseScope(rl)
	if err != nil {
		return nil, fmt.Errorf("the CRL of %q %w", rl.Issuer.String(), err)
	}
	var issuer *x509.Certificate
	var sigErr error
	for _, c := range issuers {
		if !bytes.Equal(c.RawSubject, rl.RawIssuer) {
			continue
		}
		if sigErr = rl.CheckSignatureFrom(c); sigErr == nil {
			issuer = c
			break
		}
	}
	if issuer == nil && sigErr != nil {
		return nil, fmt.Errorf("CRL signature does not verify with its issuer %q in the CA bundle: %w", rl.Issuer.String(), sigErr)
	}
	// A CRL whose issuer is not in the bundle belongs to an intermediate that clients
	// send with their chain; its signature is checked against that intermediate the
	// first time a verified chain contains it, and it counts for nothing before.
	c := &CRL{List: rl, Issuer: issuer, scope: sc, revoked: make(map[string]int, len(rl.RevokedCertificateEntries))}
	for i, e := range rl.RevokedCertificateEntries {
		c.revoked[string(e.SerialNumber.Bytes())] = i
	}
	return c, nil
}

// Entry returns the CRL's entry for cert when the CRL is its issuer's (by name) and
// lists its serial.
func (c *CRL) Entry(cert *x509.Certificate) (x509.RevocationListEntry, bool) {
	i, ok := c.revoked[string(cert.SerialNumber.Bytes())]
	if !ok || !bytes.Equal(c.List.RawIssuer, cert.RawIssuer) {
		return x509.RevocationListEntry{}, false
	}
	return c.List.RevokedCertificateEntries[i], true
}

// Stale reports whether the CRL is past its NextUpdate at now.
func (c *CRL) Stale(now time.Time) bool {
	return !c.List.NextUpdate.IsZero() && now.After(c.List.NextUpdate)
}

// Set is every CRL of one CA bundle, indexed by issuer. A nil *Set checks nothing.
type Set struct {
	byIssuer map[string][]*CRL // signature checked at load
	pending  map[string][]*CRL // by issuer subject; issuer not in the bundle
	lazy     sync.Map          // issuerKey → []*CRL, pending CRLs checked against a seen issuer
	issuers  sync.Map          // string(anchor.Raw) → *x509.Certificate (nil: none), see issuerOf
	failOpen bool
}

// NewSet indexes crls. With failOpen, a stale or missing CRL lets certificates pass.
func NewSet(crls []*CRL, failOpen bool) *Set {
	s := &Set{byIssuer: map[string][]*CRL{}, pending: map[string][]*CRL{}, failOpen: failOpen}
	for _, c := range crls {
		if c.Issuer == nil {
			k := string(c.List.RawIssuer)
			s.pending[k] = append(s.pending[k], c)
			continue
		}
		k := issuerKey(c.Issuer)
		s.byIssuer[k] = append(s.byIssuer[k], c)
	}
	return s
}

func issuerKey(c *x509.Certificate) string {
	return string(c.RawSubject) + "\x00" + string(c.RawSubjectPublicKeyInfo)
}

// CheckChain checks a verified chain (leaf first, trust anchor last). The leaf must be
// covered by a current CRL of its issuer (else ErrUnavailable, unless fail open);
// intermediates are checked against the CRLs of their issuers where CRLs covering them
// are loaded. A CRL covers the certificates its IssuingDistributionPoint scope names.
func (s *Set) CheckChain(chain []*x509.Certificate, now time.Time) error {
	if s == nil || len(chain) < 2 {
		return nil
	}
	// A chain ends at the first certificate of the CA bundle it reaches, which may be an
	// intermediate (crypto/tls stops there, though the bundle holds its issuer): it is
	// checked against its issuer's loaded CRLs too, as an intermediate inside the chain
	// is, so a CRL revoking a bundle intermediate (fetched from its CDP, say) refuses its
	// clients. A root anchor costs one comparison.
	for top, n := chain[len(chain)-1], 0; n < 8 && !bytes.Equal(top.RawIssuer, top.RawSubject); n++ {
		issuer := s.issuerOf(top)
		if issuer == nil {
			break
		}
		if err := s.check(top, issuer, now, false); err != nil {
			return err
		}
		top = issuer
	}
	// From the anchor down, so a revoked intermediate is reported as revoked rather
	// than as a leaf whose issuer has no CRL.
	for i := len(chain) - 2; i >= 0; i-- {
		if err := s.check(chain[i], chain[i+1], now, i == 0); err != nil {
			return err
		}
	}
	return nil
}

func (s *Set) check(cert, issuer *x509.Certificate, now time.Time, required bool) error {
	covering, fresh := 0, 0
	serial := cert.SerialNumber.Bytes()
	// Every CRL of the issuer is consulted, not only the newest: a serial revoked in any
	// loaded CRL stays revoked (aws-lc#3496 checked only the "best" CRL), whatever the
	// CRL's scope. Only a CRL whose scope covers cert can vouch that it is not revoked.
	for _, c := range s.crlsOf(issuer) {
		if _, ok := c.revoked[string(serial)]; ok {
			return ErrRevoked
		}
		if c.scope.covers(cert) {
			covering++
			if !c.Stale(now) {
				fresh++
			}
		}
	}
	if fresh == 0 && !s.failOpen && (required || covering > 0) {
		return ErrUnavailable
	}
	return nil
}

// issuerOf returns the CA that signed cert among the issuers of the loaded CRLs (the
// bundle's CAs that have a CRL), or nil; looked up once per certificate, then cached.
func (s *Set) issuerOf(cert *x509.Certificate) *x509.Certificate {
	if v, ok := s.issuers.Load(string(cert.Raw)); ok {
		return v.(*x509.Certificate)
	}
	var found *x509.Certificate
	for _, cs := range s.byIssuer {
		if iss := cs[0].Issuer; !iss.Equal(cert) && bytes.Equal(iss.RawSubject, cert.RawIssuer) && cert.CheckSignatureFrom(iss) == nil {
			found = iss
			break
		}
	}
	s.issuers.Store(string(cert.Raw), found)
	return found
}

// crlsOf returns the CRLs of issuer: loaded ones, or pending ones whose signature
// verifies with issuer (checked once per issuer, then cached).
func (s *Set) crlsOf(issuer *x509.Certificate) []*CRL {
	k := issuerKey(issuer)
	if cs, ok := s.byIssuer[k]; ok {
		return cs
	}
	pend := s.pending[string(issuer.RawSubject)]
	if len(pend) == 0 {
		return nil
	}
	if v, ok := s.lazy.Load(k); ok {
		return v.([]*CRL)
	}
	var cs []*CRL
	for _, c := range pend {
		if c.List.CheckSignatureFrom(issuer) == nil {
			checked := *c
			checked.Issuer = issuer
			cs = append(cs, &checked)
		}
	}
	s.lazy.Store(k, cs)
	return cs
}

// List returns every CRL in the set.
func (s *Set) List() []*CRL {
	if s == nil {
		return nil
	}
	var all []*CRL
	for _, cs := range s.byIssuer {
		all = append(all, cs...)
	}
	for _, cs := range s.pending {
		all = append(all, cs...)
	}
	return all
}
