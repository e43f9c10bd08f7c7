package clientauth

import (
	"crypto/x509"
	"fmt"
	"strings"
)

// checkNameConstraints re-checks the leaf's URI and email SANs against the permitted
// name constraints of the chain's CAs as RFC 5280 §4.2.1.10 reads them for these two
// types: a constraint with a leading dot ("." + domain) admits every host under the
// domain, one without names exactly one host. crypto/x509 matches URI and email
// constraints as DNS ones, so "tenant.example" also admitted sub.tenant.example
// (golang/go#81280, #81285; S8), which a tenant CA's operator did not grant. The DNS,
// IP and excluded constraints, which x509 applies at least as strictly, are left to it.
func checkNameConstraints(chain []*x509.Certificate) error {
	leaf := chain[0]
	if len(leaf.URIs)+len(leaf.EmailAddresses) == 0 {
		return nil
	}
	for _, ca := range chain[1:] {
		if len(ca.PermittedURIDomains) > 0 {
			for _, u := range leaf.URIs {
				if !permitsHost(ca.PermittedURIDomains, strings.ToLower(u.Hostname())) {
					return fmt.Errorf("URI %q is not permitted by the name constraints of %q (a constraint without a leading dot names one host)", u, ca.Subject)
				}
			}
		}
		if len(ca.PermittedEmailAddresses) > 0 {
			for _, e := range leaf.EmailAddresses {
				if !permitsMailbox(ca.PermittedEmailAddresses, e) {
					return fmt.Errorf("email %q is not permitted by the name constraints of %q (a constraint without a leading dot names one host)", e, ca.Subject)
				}
			}
		}
	}
	return nil
}

// permitsHost reports whether a constraint admits host: ".d" every host under d, "h"
// host h alone.
func permitsHost(constraints []string, host string) bool {
	for _, c := range constraints {
		c = strings.ToLower(c)
		if strings.HasPrefix(c, ".") && strings.HasSuffix(host, c) || c == host {
			return true
		}
	}
	return false
}

// permitsMailbox reports whether a constraint admits the mailbox: a whole mailbox
// (local part exact, domain in any case), or a host or domain as permitsHost reads it.
func permitsMailbox(constraints []string, mailbox string) bool {
	at := strings.LastIndexByte(mailbox, '@')
	if at < 0 {
		return false
	}
	local, domain := mailbox[:at], strings.ToLower(mailbox[at+1:])
	for _, c := range constraints {
		if cl, cd, ok := strings.Cut(c, "@"); ok {
			if cl == local && strings.ToLower(cd) == domain {
				return true
			}
		} else if permitsHost([]string{c}, domain) {
			return true
		}
	}
	return false
}
