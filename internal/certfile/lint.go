package certfile

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// ExpirySoon is how close to NotAfter a certificate draws a warning.
const ExpirySoon = 30 * 24 * time.Hour

// LintServer returns warnings about a server certificate file as it was given (leaf
// first is not assumed): wrong order, missing intermediate, weak key, expiry. roots are
// the anchors clients are expected to trust (system roots and the config's CA bundles);
// a chain that does not reach them is reported as a likely missing intermediate.
func LintServer(certs []*x509.Certificate, key crypto.Signer, roots *x509.CertPool, now time.Time) []string {
	var ws []string
	if len(certs) == 0 {
		return nil
	}
	if key != nil && !KeyMatches(certs[0], key) {
		ws = append(ws, "the first certificate is not the key's: the chain is out of order (tlsgate reorders it; other tools will not)")
	} else if !InOrder(certs) {
		ws = append(ws, "the chain is out of order: each certificate should be followed by its issuer")
	}
	chain := certs
	if key != nil {
		if c, err := OrderChain(certs, key); err == nil {
			chain = c
		}
	}
	if last := chain[len(chain)-1]; roots != nil && !selfSigned(last) {
		opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool(), CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
		for _, c := range chain[1:] {
			opts.Intermediates.AddCert(c)
		}
		if _, err := chain[0].Verify(opts); err != nil {
			if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
				ws = append(ws, fmt.Sprintf("the chain ends at %q, whose issuer %q is neither included nor a system root or CA bundle of this config: if %q is an intermediate, append it after the leaf, or clients fail with unknown_ca", last.Subject, last.Issuer, last.Issuer))
			}
		}
	}
	return append(ws, lintEach(chain, now)...)
}

// LintCA returns warnings about a CA bundle: CAs that cannot sign, weak keys, expiry.
func LintCA(certs []*x509.Certificate, now time.Time) []string {
	var ws []string
	for _, c := range certs {
		if c.KeyUsage != 0 && c.KeyUsage&x509.KeyUsageCertSign == 0 {
			ws = append(ws, fmt.Sprintf("%q is a CA without the keyCertSign key usage: nothing it signs will verify", c.Subject))
		}
	}
	return append(ws, lintEach(certs, now)...)
}

func lintEach(certs []*x509.Certificate, now time.Time) []string {
	var ws []string
	for _, c := range certs {
		if k, ok := c.PublicKey.(*rsa.PublicKey); ok && k.N.BitLen() < 2048 {
			ws = append(ws, fmt.Sprintf("%q has a %d-bit RSA key: use at least 2048", c.Subject, k.N.BitLen()))
		}
		switch left := c.NotAfter.Sub(now); {
		case left <= 0:
			ws = append(ws, fmt.Sprintf("%q expired on %s", c.Subject, c.NotAfter.Format(time.DateOnly)))
		case left < ExpirySoon:
			ws = append(ws, fmt.Sprintf("%q expires in %d days (%s)", c.Subject, int(left.Hours()/24), c.NotAfter.Format(time.DateOnly)))
		}
		if now.Before(c.NotBefore) {
			ws = append(ws, fmt.Sprintf("%q is not valid before %s", c.Subject, c.NotBefore.Format(time.RFC3339)))
		}
	}
	return ws
}

func selfSigned(c *x509.Certificate) bool {
	return c.CheckSignatureFrom(c) == nil
}
