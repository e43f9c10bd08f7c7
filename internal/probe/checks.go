package probe

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"

	"tlsgate/internal/certfile"
	"tlsgate/internal/clientauth"
	"tlsgate/internal/revocation"
)

func validityCheck(c *x509.Certificate, now time.Time) Check {
	ch := Check{Name: "validity period", Status: Pass,
		Detail: fmt.Sprintf("%s to %s", c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))}
	switch {
	case now.After(c.NotAfter):
		ch.Status, ch.Detail = Fail, "EXPIRED on "+c.NotAfter.UTC().Format(time.RFC3339)
	case now.Before(c.NotBefore):
		ch.Status, ch.Detail = Fail, "NOT YET VALID until "+c.NotBefore.UTC().Format(time.RFC3339)
	}
	return ch
}

// serverChain is the client's VerifyConnection: it records every check of the server
// chain (ServerHello, certificates, validity, trust, name, revocation) and fails the
// handshake when trust, validity, name or revocation fail, as a browser would.
func (r *run) serverChain(cs tls.ConnectionState) error {
	r.chain = true
	hello := []string{
		"version: " + tls.VersionName(cs.Version),
		"cipher suite: " + tls.CipherSuiteName(cs.CipherSuite),
		fmt.Sprintf("resumed: %v", cs.DidResume),
	}
	if cs.CurveID != 0 {
		hello = append(hello[:2], append([]string{"group: " + groupName(cs.CurveID)}, hello[2:]...)...)
	}
	r.emit(Step{Kind: "server_hello", Title: "ServerHello chosen", Status: Info, Lines: hello})
	certs := cs.PeerCertificates
	r.staple = cs.OCSPResponse
	now := r.now()
	s := Step{Kind: "server_chain", Title: fmt.Sprintf("Server certificate chain: %d certificate(s)", len(certs)), Status: Pass}
	for i, c := range certs {
		s.Lines = append(s.Lines, fmt.Sprintf("[%d] %s (issuer %s, key %s, %s to %s)", i+1, c.Subject, c.Issuer, certfile.KeyName(c.PublicKey),
			c.NotBefore.UTC().Format(time.DateOnly), c.NotAfter.UTC().Format(time.DateOnly)))
	}
	var failures []Diagnosis
	for i, c := range certs {
		ch := validityCheck(c, now)
		ch.Name = fmt.Sprintf("validity period of [%d]", i+1)
		s.Checks = append(s.Checks, ch)
		if ch.Status == Fail {
			failures = append(failures, Diagnosis{Cause: fmt.Sprintf("the server certificate %q is %s", c.Subject, strings.ToLower(strings.SplitN(ch.Detail, " ", 2)[0])), Fix: "renew the server certificate, or check the clocks"})
		}
	}
	trust, chain := r.trust(certs, now)
	s.Checks = append(s.Checks, trust)
	if trust.Status == Fail {
		failures = append(failures, Diagnosis{Cause: "the server certificate is not trusted: " + trust.Detail, Fix: "pass the issuing CA with --ca, or make the server send its intermediate certificates"})
	}
	name := r.nameCheck(certs[0])
	s.Checks = append(s.Checks, name)
	if name.Status == Fail {
		failures = append(failures, Diagnosis{Cause: "the server certificate is not valid for the name requested: " + name.Detail, Fix: "connect with a name the certificate lists (or --servername), or reissue it with this name as a SAN"})
	}
	rev := r.revocation(certs, chain, now)
	s.Checks = append(s.Checks, rev...)
	for _, c := range rev {
		if c.Status == Fail {
			failures = append(failures, Diagnosis{Cause: "the server certificate is revoked: " + c.Detail, Fix: "the server must get a new certificate"})
		}
	}
	if len(failures) > 0 {
		s.Status = Fail
		r.failed = &failures[0]
	}
	r.emit(s)
	if len(failures) > 0 {
		return errors.New("probe: server certificate rejected: " + failures[0].Cause)
	}
	return nil
}

func (r *run) trust(certs []*x509.Certificate, now time.Time) (Check, []*x509.Certificate) {
	opts := x509.VerifyOptions{Roots: r.o.Roots, Intermediates: x509.NewCertPool(), CurrentTime: now}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	chains, err := certs[0].Verify(opts)
	if err == nil {
		root := chains[0][len(chains[0])-1]
		return Check{Name: "trust", Status: Pass, Detail: "chains to the trusted root " + root.Subject.String()}, chains[0]
	}
	detail := err.Error()
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		last := certs[len(certs)-1]
		switch {
		case len(certs) == 1 && last.CheckSignatureFrom(last) == nil:
			detail = "the certificate is self-signed and not among the trusted roots (--ca)"
		default:
			detail = fmt.Sprintf("the chain ends at %q, whose issuer %q is not a trusted root: either the server does not send an intermediate, or that CA must be given with --ca", last.Subject, last.Issuer)
		}
	}
	return Check{Name: "trust", Status: Fail, Detail: detail}, nil
}

func (r *run) nameCheck(leaf *x509.Certificate) Check {
	name := r.sni
	if name == "" {
		name = r.o.Target.Host
	}
	var sans []string
	sans = append(sans, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		sans = append(sans, ip.String())
	}
	if err := leaf.VerifyHostname(name); err != nil {
		return Check{Name: "name", Status: Fail, Detail: fmt.Sprintf("%q is not among the certificate's names [%s]", name, strings.Join(sans, ", "))}
	}
	return Check{Name: "name", Status: Pass, Detail: fmt.Sprintf("%q matches [%s]", name, strings.Join(sans, ", "))}
}

// revocation checks the chain against the CRLs given and names what else the
// certificate points to.
func (r *run) revocation(certs, chain []*x509.Certificate, now time.Time) []Check {
	var out []Check
	issuers := append(slices.Clone(certs), chain...)
	if len(r.o.CRLs) > 0 && chain != nil {
		var crls []*revocation.CRL
		for i, data := range r.o.CRLs {
			cs, err := revocation.ParseFile(data, issuers)
			if err != nil {
				out = append(out, Check{Name: "revocation (CRL)", Status: Warn, Detail: fmt.Sprintf("--crl file %d is not used: %v", i+1, err)})
				continue
			}
			crls = append(crls, cs...)
		}
		set := revocation.NewSet(crls, false)
		switch err := set.CheckChain(chain, now); {
		case errors.Is(err, revocation.ErrRevoked):
			out = append(out, Check{Name: "revocation (CRL)", Status: Fail, Detail: "listed in a CRL given with --crl"})
		case err != nil:
			out = append(out, Check{Name: "revocation (CRL)", Status: Warn, Detail: "no current CRL given for the server certificate's issuer"})
		default:
			out = append(out, Check{Name: "revocation (CRL)", Status: Pass, Detail: "not listed in the CRLs given"})
		}
	}
	leaf := certs[0]
	var issuer *x509.Certificate
	if len(chain) > 1 {
		issuer = chain[1]
	}
	for _, u := range leaf.CRLDistributionPoints {
		out = append(out, r.fetchedCRL(u, leaf, issuers, now))
	}
	if len(r.staple) > 0 {
		out = append(out, stapleCheck(r.staple, leaf, issuer))
	}
	for _, u := range leaf.OCSPServer {
		out = append(out, r.ocspCheck(u, leaf, issuer))
	}
	if len(out) == 0 {
		out = append(out, Check{Name: "revocation", Status: Info, Detail: "no revocation information: no --crl given, and the certificate names no CRL or OCSP responder"})
	}
	return out
}

type clientCheck struct {
	step   Step
	failed string
	reason string
}

// clientChecks runs every check it can on the client's own certificate after the
// server refused it, and names the first that fails. said is the reason the server
// gave, when its alert or page names one.
func (r *run) clientChecks(said clientauth.Reason) clientCheck {
	cc := r.o.ClientCert
	var certs []*x509.Certificate
	for _, der := range cc.Certificate {
		if c, err := x509.ParseCertificate(der); err == nil {
			certs = append(certs, c)
		}
	}
	out := clientCheck{step: Step{Kind: "client_checks", Title: "Checks of the client certificate (after the server's refusal)", Status: Pass}}
	if len(certs) == 0 {
		return out
	}
	leaf, now := certs[0], r.now()
	add := func(c Check, failure string, reason clientauth.Reason) {
		out.step.Checks = append(out.step.Checks, c)
		if c.Status == Fail && out.failed == "" {
			out.failed, out.reason, out.step.Status = failure, string(reason), Fail
		}
	}
	v := validityCheck(leaf, now)
	reason := clientauth.Expired
	if now.Before(leaf.NotBefore) {
		reason = clientauth.NotYetValid
	}
	add(v, "it is outside its validity period ("+v.Detail+")", reason)
	// Go (tlsgate) refuses a SHA-1 signed chain as from an unknown CA, OpenSSL 3 with
	// "ca md too weak": checked before the same-name CA check, which it would trip.
	weak := weakSignatureCheck(certs)
	add(weak, "it is signed with "+weak.Detail+", which current servers refuse (Go as unknown_ca, OpenSSL 3 as \"ca md too weak\"): re-issue it with SHA-256", clientauth.UnknownCA)
	if r.asked != nil {
		ch := Check{Name: "issuer among the acceptable CAs", Status: Pass, Detail: "the chain sent reaches a CA the server named"}
		if err := r.asked.SupportsCertificate(cc); err != nil {
			ch.Status, ch.Detail = Fail, err.Error()
		}
		if len(r.asked.AcceptableCAs) == 0 {
			ch.Status, ch.Detail = Info, "the server named no CAs"
		}
		add(ch, "its issuer is not among the CAs the server accepts (see the CertificateRequest step); send the intermediates too", clientauth.UnknownCA)
		if ch.Status == Pass && said == clientauth.UnknownCA && weak.Status != Fail {
			// The chain reaches a CA by name, yet the server does not know the CA: the
			// one that signed it has the name but not the key (ghostunnel#220, a CA
			// regenerated under the same name).
			add(Check{Name: "signed by the CA the server trusts", Status: Fail,
				Detail: "the server names the issuer's CA but refused the chain as from an unknown CA: a CA of the same name with another key signed it"},
				"it was signed by a CA with the name of one the server trusts but another key (a CA regenerated under the same name?): re-issue it from the current CA, or give the server the new CA", clientauth.UnknownCA)
		}
	}
	eku := Check{Name: "EKU allows clientAuth", Status: Pass, Detail: "no EKU (any usage)"}
	if len(leaf.ExtKeyUsage) > 0 {
		eku.Detail = "has clientAuth"
		if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny) {
			eku.Status, eku.Detail = Fail, "the EKU lacks clientAuth"
		}
	}
	add(eku, "its extended key usage does not allow client authentication", clientauth.BadUsage)
	// user-asks 2.5 item 5: OpenSSL's client purpose wants digitalSignature or
	// keyAgreement when a key usage is present ("unsupported certificate purpose", alert
	// unsupported_certificate); Go servers, tlsgate's, do not check it.
	ku := Check{Name: "key usage allows signing", Status: Pass, Detail: "no key usage (any)"}
	if leaf.KeyUsage != 0 {
		ku.Detail = "has digitalSignature or keyAgreement"
		if leaf.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageKeyAgreement) == 0 {
			ku.Status, ku.Detail = Fail, "the key usage has neither digitalSignature nor keyAgreement"
		}
	}
	add(ku, "its key usage does not allow signing (no digitalSignature): OpenSSL-based servers refuse it as \"unsupported certificate purpose\"", clientauth.BadUsage)
	if leaf.IsCA {
		add(Check{Name: "not a CA certificate", Status: Fail, Detail: "a CA certificate is used as the client certificate"}, "it is a CA certificate, not a client certificate", clientauth.BadUsage)
	}
	km := Check{Name: "private key matches", Status: Pass, Detail: "the key given belongs to the certificate"}
	if signer, ok := cc.PrivateKey.(crypto.Signer); !ok || !certfile.KeyMatches(leaf, signer) {
		km.Status, km.Detail = Fail, "the key given does not belong to the certificate"
	}
	add(km, "the private key given does not belong to the certificate", clientauth.BadSignature)
	if len(r.o.CRLs) > 0 {
		listed, stale, covered := crlsOf(r.o.CRLs, leaf, certs, now)
		rc := Check{Name: "revocation (CRL)", Status: Pass, Detail: "not listed in the CRLs given"}
		if listed {
			rc.Status, rc.Detail = Fail, "listed in a CRL given with --crl"
		}
		add(rc, "it is revoked (listed in a CRL given with --crl)", clientauth.Revoked)
		// user-asks 2.5 item 6: a CRL past its next update fails closed for every
		// client of its CA (OpenSSL: "CRL has expired"; tlsgate: crl_unavailable).
		fresh := Check{Name: "CRL of its issuer current", Status: Pass, Detail: "the CRL given for its issuer is within its next update"}
		failure := ""
		switch {
		case stale != nil:
			next := stale.List.NextUpdate.UTC().Format(time.RFC3339)
			fresh.Status, fresh.Detail = Fail, "the CRL given for its issuer is past its next update ("+next+")"
			failure = "the CRL of its issuer is past its next update (" + next + "): a server that checks revocation fail_closed (tlsgate's default crl_policy) refuses every certificate of that CA until it loads a fresh CRL"
		case !covered:
			fresh.Status, fresh.Detail = Info, "no CRL given is signed by its issuer "+leaf.Issuer.String()
		}
		add(fresh, failure, clientauth.CRLUnavailable)
	}
	return out
}

// weakSignatureCheck fails when a certificate of the chain sent (a self-signed root
// aside: its own signature is not checked) is signed with SHA-1 or MD5.
func weakSignatureCheck(certs []*x509.Certificate) Check {
	for _, c := range certs {
		switch c.SignatureAlgorithm {
		case x509.SHA1WithRSA, x509.ECDSAWithSHA1, x509.DSAWithSHA1, x509.MD5WithRSA, x509.MD2WithRSA:
			if !bytes.Equal(c.RawIssuer, c.RawSubject) {
				return Check{Name: "signature algorithm", Status: Fail, Detail: fmt.Sprintf("%s (certificate %q)", c.SignatureAlgorithm, c.Subject)}
			}
		}
	}
	return Check{Name: "signature algorithm", Status: Pass, Detail: "no SHA-1 or MD5 signature in the chain sent"}
}

// crlsOf reports whether a CRL of leaf's issuer lists it, the first CRL of its issuer
// past its next update, and whether any CRL given is its issuer's. The CRL's signature is
// checked when its issuer is among certs; when the client holds only its leaf, the
// issuer name alone ties the CRL to it (a diagnosis, not an access decision).
func crlsOf(files [][]byte, leaf *x509.Certificate, certs []*x509.Certificate, now time.Time) (listed bool, stale *revocation.CRL, covered bool) {
	for _, data := range files {
		cs, err := revocation.ParseFile(data, certs[1:])
		if err != nil {
			continue
		}
		for _, c := range cs {
			if _, ok := c.Entry(leaf); ok {
				listed = true
			}
			if bytes.Equal(c.List.RawIssuer, leaf.RawIssuer) {
				covered = true
				if c.Stale(now) && stale == nil {
					stale = c
				}
			}
		}
	}
	return listed, stale, covered
}

// fetchedCRL downloads a CRL the certificate names and checks the certificate in it.
func (r *run) fetchedCRL(url string, leaf *x509.Certificate, issuers []*x509.Certificate, now time.Time) Check {
	ch := Check{Name: "CRL distribution point " + url}
	body, err := r.get(url)
	if err != nil {
		ch.Status, ch.Detail = Warn, "could not fetch: "+err.Error()
		return ch
	}
	cs, err := revocation.ParseFile(body, issuers)
	if err != nil {
		ch.Status, ch.Detail = Warn, "not a CRL of this chain: "+err.Error()
		return ch
	}
	for _, c := range cs {
		if e, ok := c.Entry(leaf); ok {
			ch.Status, ch.Detail = Fail, "the certificate is listed (revoked "+e.RevocationTime.UTC().Format(time.RFC3339)+")"
			return ch
		}
		if c.Stale(now) {
			ch.Status, ch.Detail = Warn, "the CRL is past its next update ("+c.List.NextUpdate.UTC().Format(time.RFC3339)+")"
			return ch
		}
	}
	ch.Status, ch.Detail = Pass, "not listed"
	return ch
}

// stapleCheck reads the OCSP response the server stapled to its certificate.
func stapleCheck(staple []byte, leaf, issuer *x509.Certificate) Check {
	ch := Check{Name: "OCSP staple"}
	if issuer == nil {
		ch.Status, ch.Detail = Warn, "present, but the issuer is unknown"
		return ch
	}
	resp, err := ocsp.ParseResponseForCert(staple, leaf, issuer)
	switch {
	case err != nil:
		ch.Status, ch.Detail = Fail, "invalid: "+err.Error()
	case resp.Status == ocsp.Good:
		ch.Status, ch.Detail = Pass, "good, next update "+resp.NextUpdate.UTC().Format(time.RFC3339)
	case resp.Status == ocsp.Revoked:
		ch.Status, ch.Detail = Fail, "revoked at "+resp.RevokedAt.UTC().Format(time.RFC3339)
	default:
		ch.Status, ch.Detail = Warn, "unknown"
	}
	return ch
}

// ocspCheck asks the certificate's OCSP responder about it.
func (r *run) ocspCheck(url string, leaf, issuer *x509.Certificate) Check {
	ch := Check{Name: "OCSP " + url}
	if issuer == nil {
		ch.Status, ch.Detail = Warn, "not asked: the issuer certificate is unknown (the chain did not verify)"
		return ch
	}
	ctx, cancel := context.WithTimeout(context.Background(), min(r.o.Timeout, 5*time.Second))
	defer cancel()
	resp, _, err := revocation.QueryOCSP(ctx, http.DefaultClient, url, leaf, issuer)
	switch {
	case err != nil:
		ch.Status, ch.Detail = Warn, err.Error()
	case resp.Status == ocsp.Good:
		ch.Status, ch.Detail = Pass, "good"
	case resp.Status == ocsp.Revoked:
		ch.Status, ch.Detail = Fail, "revoked at "+resp.RevokedAt.UTC().Format(time.RFC3339)
	default:
		ch.Status, ch.Detail = Warn, "the responder does not know the certificate"
	}
	return ch
}

func (r *run) get(url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), min(r.o.Timeout, 5*time.Second))
	defer cancel()
	return revocation.FetchCRL(ctx, http.DefaultClient, url)
}
