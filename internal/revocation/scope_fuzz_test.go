package revocation

import (
	"crypto/x509"
	"testing"
)

// FuzzParseIDP: the Issuing Distribution Point parser (our own, over cryptobyte) never
// panics, and a scope it accepts answers covers for any certificate.
func FuzzParseIDP(f *testing.F) {
	for _, seed := range [][]byte{
		{0x30, 0x00},                         // empty: full scope
		{0x30, 0x03, 0x81, 0x01, 0xff},       // onlyContainsUserCerts
		{0x30, 0x03, 0x82, 0x01, 0xff},       // onlyContainsCACerts
		{0x30, 0x04, 0x83, 0x02, 0x06, 0x40}, // onlySomeReasons: keyCompromise
		{0x30, 0x03, 0x84, 0x01, 0xff},       // indirectCRL
		// distributionPoint fullName URI:http://a/
		{0x30, 0x0f, 0xa0, 0x0d, 0xa0, 0x0b, 0x86, 0x09, 'h', 't', 't', 'p', ':', '/', '/', 'a', '/'},
		{0x30, 0x03, 0x81, 0x01}, // truncated
	} {
		f.Add(seed)
	}
	certs := []*x509.Certificate{
		{},
		{BasicConstraintsValid: true, IsCA: true},
		{CRLDistributionPoints: []string{"http://a/"}},
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		sc, err := parseIDP(der)
		if err != nil {
			return
		}
		for _, c := range certs {
			_ = sc.covers(c)
		}
		if sc.userOnly && sc.caOnly {
			t.Fatalf("accepted a scope with both onlyContainsUserCerts and onlyContainsCACerts: %x", der)
		}
	})
}
