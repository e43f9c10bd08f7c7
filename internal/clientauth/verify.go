// Package clientauth is the one client-certificate verification pipeline of tlsgate:
// chain to the CA bundle (including intermediates sent by the client) → validity period →
// usage (EKU clientAuth, no CA certificate as leaf) → CRL → allow-list, returning a reason
// code from one table (reason.go). The server, `cert verify` and probe all use it, so they
// agree on why a certificate is refused. It imports only certfile and revocation, and
// does no I/O.
package clientauth

import (
	"crypto/x509"
	"errors"
	"time"

	"tlsgate/internal/revocation"
)

// Verifier checks client certificates against one CA bundle.
type Verifier struct {
	// Roots are the trust anchors: every certificate of the CA bundle. An intermediate in
	// the bundle is an anchor too, so a bundle holding only an intermediate trusts only
	// clients under it (as nginx's ssl_client_certificate does).
	Roots *x509.CertPool
	// CRLs are the bundle's CRLs; nil checks no revocation.
	CRLs *revocation.Set
	// Allow restricts verified identities; nil allows all.
	Allow *AllowList
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OCSP, when set, asks the OCSP responder a client certificate names.
	OCSP *revocation.OCSP
	// Deny, when set, refuses certificates at once (the admin denylist).
	Deny func(*x509.Certificate) bool
	// KeyUsages the leaf must allow; nil means clientAuth (`cert verify --purpose server`
	// sets serverAuth).
	KeyUsages []x509.ExtKeyUsage
	// ExpiryGrace accepts a leaf up to this long past its NotAfter (ssl.expiry_grace);
	// the rest of the chain must be valid now, and revocation and the allow-list are
	// checked as ever. InGrace tells such a leaf.
	ExpiryGrace time.Duration
	// Cache, when set, keeps the chains this Verifier built (ssl.verify_cache); it must
	// serve this Verifier alone (see Cache). nil builds every chain.
	Cache *Cache
}

// InGrace reports whether leaf, verified, is past its NotAfter: accepted only by the
// expiry grace.
func (v *Verifier) InGrace(leaf *x509.Certificate) bool {
	return v.ExpiryGrace > 0 && v.now().After(leaf.NotAfter)
}

func (v *Verifier) now() time.Time {
	if v.Now == nil {
		return time.Now()
	}
	return v.Now()
}

// Options returns the x509 options that crypto/tls would use for these certificates, so
// that the pipeline and the TLS stack agree on the chain.
func (v *Verifier) options(certs []*x509.Certificate) x509.VerifyOptions {
	opts := x509.VerifyOptions{
		Roots:         v.Roots,
		CurrentTime:   v.now(),
		Intermediates: x509.NewCertPool(),
		KeyUsages:     v.KeyUsages,
	}
	if opts.KeyUsages == nil {
		opts.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	return opts
}

// Verify runs the whole pipeline on the certificates a client sent (leaf first) and
// returns the verified chain, or an *Error with the reason. With a Cache, a chain built
// before for the same certificates, still within its validity periods, is taken instead
// of building it again; the checks after chain building always run.
func (v *Verifier) Verify(certs []*x509.Certificate) ([]*x509.Certificate, error) {
	if len(certs) == 0 {
		return nil, reject(NoClientCert, nil)
	}
	if v.Cache == nil {
		chain, err := v.buildChain(certs)
		if err != nil {
			return nil, err
		}
		return chain, v.CheckVerified(chain)
	}
	key := cacheKey(certs)
	if chain := v.Cache.get(key, v.now(), v.ExpiryGrace); chain != nil {
		err := v.CheckVerified(chain)
		if err != nil {
			v.Cache.drop(key) // only chains whose whole pipeline passes stay
		} else {
			v.Cache.remember(certs, chain)
		}
		return chain, err
	}
	chain, err := v.buildChain(certs)
	if err != nil {
		return nil, err
	}
	if err := v.CheckVerified(chain); err != nil {
		return chain, err
	}
	v.Cache.put(key, chain)
	v.Cache.remember(certs, chain)
	return chain, nil
}

// Passed returns the chain of a Verify that passed moments ago for this very slice of
// certificates (the same backing array: a connection's PeerCertificates), or nil when
// there is no Cache or it no longer remembers. It is how a Verdict takes the chain its
// handshake's VerifyConnection verified without hashing and checking it again; the
// checks then ran microseconds ago, as crypto/tls's chain in mutual mode without a
// cache, and a reload re-checks open connections.
func (v *Verifier) Passed(certs []*x509.Certificate) []*x509.Certificate {
	if v.Cache == nil {
		return nil
	}
	return v.Cache.passed(certs)
}

// buildChain verifies certs to the roots (validity, usage, the leaf's expiry grace) and
// returns the first chain x509 found.
func (v *Verifier) buildChain(certs []*x509.Certificate) ([]*x509.Certificate, error) {
	opts := v.options(certs)
	chains, err := certs[0].Verify(opts)
	if err != nil && v.graced(err, certs[0]) {
		// The leaf alone is past its NotAfter, within the grace: verify a copy whose
		// NotAfter is now. Signatures cover the raw certificate, not the parsed field,
		// so only the leaf's expiry is waived; the chain then holds the leaf as sent.
		relaxed := *certs[0]
		relaxed.NotAfter = opts.CurrentTime
		if chains, err = relaxed.Verify(opts); err == nil {
			for _, c := range chains {
				c[0] = certs[0]
			}
		}
	}
	if err != nil {
		return nil, reject(ChainReason(err, v.now()), err)
	}
	return chains[0], nil
}

// graced reports whether a chain error is the leaf's expiry, within the grace.
func (v *Verifier) graced(err error, leaf *x509.Certificate) bool {
	ci, ok := errors.AsType[x509.CertificateInvalidError](err)
	past := v.now().Sub(leaf.NotAfter)
	return ok && ci.Reason == x509.Expired && ci.Cert != nil && ci.Cert.Equal(leaf) && past > 0 && past <= v.ExpiryGrace
}

// CheckVerified runs the steps after chain building on a chain crypto/tls already
// verified (trust, validity and EKU): CA-as-leaf, URI and email name constraints, CRL
// and allow-list. It is what VerifyConnection calls in mutual mode, on full and resumed
// handshakes alike.
func (v *Verifier) CheckVerified(chain []*x509.Certificate) error {
	leaf := chain[0]
	// A CA certificate presented as a client certificate is refused even when it chains:
	// it would otherwise turn any CA in the bundle into a client identity
	// (wolfSSL/wolfssh#1075).
	if leaf.BasicConstraintsValid && leaf.IsCA {
		return reject(BadUsage, errors.New("a CA certificate is used as a client certificate"))
	}
	if err := checkNameConstraints(chain); err != nil {
		return reject(UnknownCA, err)
	}
	if v.Deny != nil && v.Deny(leaf) {
		return reject(Denied, nil)
	}
	switch err := v.CRLs.CheckChain(chain, v.now()); {
	case errors.Is(err, revocation.ErrRevoked):
		return reject(Revoked, err)
	case err != nil:
		return reject(CRLUnavailable, err)
	}
	if v.OCSP != nil && len(chain) > 1 {
		switch err := v.OCSP.Check(leaf, chain[1]); {
		case errors.Is(err, revocation.ErrRevoked):
			return reject(Revoked, errors.New("revoked by its OCSP responder"))
		case err != nil:
			return reject(OCSPUnavailable, err)
		}
	}
	if !v.Allow.Allows(leaf) {
		return reject(NotAllowed, nil)
	}
	return nil
}

// Recheck runs again, on a chain verified earlier, the checks whose answer changes with
// the configuration alone: CA-as-leaf, the denylist, the CRLs and the allow-list. OCSP,
// which may ask the network, is left out. It is what a reload asks of open connections.
func (v *Verifier) Recheck(chain []*x509.Certificate) Reason {
	offline := *v
	offline.OCSP = nil
	return ReasonOf(offline.CheckVerified(chain))
}

// ChainReason maps an x509 chain-verification error to a reason.
func ChainReason(err error, now time.Time) Reason {
	if ci, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		switch ci.Reason {
		case x509.Expired:
			if ci.Cert != nil && now.Before(ci.Cert.NotBefore) {
				return NotYetValid
			}
			return Expired
		case x509.IncompatibleUsage:
			return BadUsage
		}
	}
	return UnknownCA
}
