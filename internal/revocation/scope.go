package revocation

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// crypto/x509 parses a CRL's extensions but acts on none of them, so a CRL that covers
// only part of its issuer's certificates would count as covering all of them: a
// certificate revoked in a partition that is not loaded would pass, with the loaded
// partition standing in as its "current CRL" (S5: revocation configured but not
// enforced). RFC 5280 §5.2 and §6.3.3 decide instead, as OpenSSL does: the
// IssuingDistributionPoint scope is honoured, and a CRL with a critical extension we do
// not process is refused at load (delta and indirect CRLs among them).
var (
	oidIssuingDistributionPoint = asn1.ObjectIdentifier{2, 5, 29, 28}
	oidDeltaCRLIndicator        = asn1.ObjectIdentifier{2, 5, 29, 27}
	oidCertificateIssuer        = asn1.ObjectIdentifier{2, 5, 29, 29}
	// Read by crypto/x509 itself; harmless if marked critical.
	oidAuthorityKeyID = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidCRLNumber      = asn1.ObjectIdentifier{2, 5, 29, 20}
)

// scope is which of its issuer's certificates a CRL covers, from its
// IssuingDistributionPoint; the zero value (no such extension) is all of them.
type scope struct {
	userOnly, caOnly bool
	// partial: only some revocation reasons, or attribute certificates only; such a
	// CRL's entries still revoke, but it is nobody's current CRL.
	partial bool
	// dpURIs, when dp is set, are the URIs of the distribution point the CRL is for; it
	// covers a certificate whose CRL distribution points name one of them.
	dp     bool
	dpURIs []string
}

// parseScope reads rl's extensions and returns its scope, or why the CRL cannot be used.
func parseScope(rl *x509.RevocationList) (scope, error) {
	var sc scope
	for _, ext := range rl.Extensions {
		switch {
		case ext.Id.Equal(oidDeltaCRLIndicator):
			return sc, errors.New("is a delta CRL (it lists only the changes since a base CRL); tlsgate reads complete CRLs: give it the full CRL")
		case ext.Id.Equal(oidIssuingDistributionPoint):
			var err error
			if sc, err = parseIDP(ext.Value); err != nil {
				return sc, fmt.Errorf("has an issuing distribution point tlsgate cannot use: %w", err)
			}
		case ext.Critical && !ext.Id.Equal(oidAuthorityKeyID) && !ext.Id.Equal(oidCRLNumber):
			return sc, fmt.Errorf("has a critical extension tlsgate does not process (%s), so it must not be used (RFC 5280 §5.2)", ext.Id)
		}
	}
	for _, e := range rl.RevokedCertificateEntries {
		for _, ext := range e.Extensions {
			if ext.Critical {
				what := "a critical entry extension tlsgate does not process (" + ext.Id.String() + ")"
				if ext.Id.Equal(oidCertificateIssuer) {
					what = "entries of another issuer (an indirect CRL), which tlsgate does not read"
				}
				return sc, fmt.Errorf("has %s: serial %X", what, e.SerialNumber.Bytes())
			}
		}
	}
	return sc, nil
}

// parseIDP decodes an IssuingDistributionPoint (RFC 5280 §5.2.5):
//
//	SEQUENCE {
//	  distributionPoint          [0] DistributionPointName OPTIONAL,  -- [0] fullName GeneralNames
//	  onlyContainsUserCerts      [1] BOOLEAN DEFAULT FALSE,
//	  onlyContainsCACerts        [2] BOOLEAN DEFAULT FALSE,
//	  onlySomeReasons            [3] ReasonFlags OPTIONAL,
//	  indirectCRL                [4] BOOLEAN DEFAULT FALSE,
//	  onlyContainsAttributeCerts [5] BOOLEAN DEFAULT FALSE }
func parseIDP(der []byte) (scope, error) {
	var sc scope
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
		return sc, errors.New("malformed")
	}
	var dpName cryptobyte.String
	var hasDP bool
	if !seq.ReadOptionalASN1(&dpName, &hasDP, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return sc, errors.New("malformed distribution point")
	}
	if hasDP {
		sc.dp = true
		var err error
		if sc.dpURIs, err = fullNameURIs(dpName); err != nil {
			return sc, err
		}
	}
	var indirect, attrOnly bool
	for _, f := range []struct {
		tag uint8
		to  *bool
	}{{1, &sc.userOnly}, {2, &sc.caOnly}} {
		if err := readFlag(&seq, f.tag, f.to); err != nil {
			return sc, err
		}
	}
	var reasons cryptobyte.String
	var hasReasons bool
	if !seq.ReadOptionalASN1(&reasons, &hasReasons, cbasn1.Tag(3).ContextSpecific()) {
		return sc, errors.New("malformed onlySomeReasons")
	}
	if err := readFlag(&seq, 4, &indirect); err != nil {
		return sc, err
	}
	if err := readFlag(&seq, 5, &attrOnly); err != nil {
		return sc, err
	}
	if !seq.Empty() {
		return sc, errors.New("malformed: trailing data")
	}
	if indirect {
		return sc, errors.New("marks an indirect CRL (entries of other issuers), which tlsgate does not read")
	}
	if sc.userOnly && sc.caOnly {
		return sc, errors.New("both onlyContainsUserCerts and onlyContainsCACerts are set")
	}
	sc.partial = hasReasons || attrOnly
	return sc, nil
}

// readFlag reads an optional implicitly tagged BOOLEAN [tag].
func readFlag(s *cryptobyte.String, tag uint8, to *bool) error {
	var v cryptobyte.String
	var present bool
	if !s.ReadOptionalASN1(&v, &present, cbasn1.Tag(tag).ContextSpecific()) {
		return fmt.Errorf("malformed field [%d]", tag)
	}
	if present {
		if len(v) != 1 {
			return fmt.Errorf("malformed boolean [%d]", tag)
		}
		*to = v[0] != 0
	}
	return nil
}

// fullNameURIs returns the URIs of a DistributionPointName's fullName; a
// nameRelativeToCRLIssuer, or names of other kinds, add none.
func fullNameURIs(dpName cryptobyte.String) ([]string, error) {
	var names cryptobyte.String
	var full bool
	if !dpName.ReadOptionalASN1(&names, &full, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return nil, errors.New("malformed distribution point name")
	}
	var uris []string
	for !names.Empty() {
		var name cryptobyte.String
		var tag cbasn1.Tag
		if !names.ReadAnyASN1(&name, &tag) {
			return nil, errors.New("malformed general name")
		}
		if tag == cbasn1.Tag(6).ContextSpecific() { // uniformResourceIdentifier IA5String
			uris = append(uris, string(name))
		}
	}
	return uris, nil
}

// covers reports whether a CRL of this scope is a complete list for cert (RFC 5280
// §6.3.3 b, as OpenSSL reads it): the right kind of certificate, all reasons, and when
// the CRL is for one distribution point, cert names that point.
func (sc scope) covers(cert *x509.Certificate) bool {
	isCA := cert.BasicConstraintsValid && cert.IsCA
	switch {
	case sc.partial, sc.userOnly && isCA, sc.caOnly && !isCA:
		return false
	case sc.dp:
		return slices.ContainsFunc(cert.CRLDistributionPoints, func(u string) bool { return slices.Contains(sc.dpURIs, u) })
	}
	return true
}
