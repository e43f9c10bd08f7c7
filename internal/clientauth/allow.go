package clientauth

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"slices"
	"strings"
)

// AllowList restricts verified client identities. A certificate passes when any entry of
// any field matches; a nil or empty list passes every verified certificate. Each field
// matches only its own kind of name (a DNS entry never matches a URI SAN), and matching
// is exact apart from the wildcards documented per field: no substring or suffix
// matching (allow-lists matched on the wrong field or by substring are a known way in).
type AllowList struct {
	// CN matches the subject common name exactly.
	CN []string
	// OU matches any subject organizational unit exactly.
	OU []string
	// DNS matches a DNS SAN, case-insensitively; "*.example.com" matches one label.
	DNS []string
	// URI matches a URI SAN; a "*" path segment matches one segment, "**" one or more
	// ("spiffe://example.org/ns/*/sa/**").
	URI []string
	// Email matches an email SAN, case-insensitively.
	Email []string
	// SPKISHA256 matches the lower-case hex SHA-256 of the SubjectPublicKeyInfo.
	SPKISHA256 []string
}

func (a *AllowList) empty() bool {
	return a == nil || len(a.CN)+len(a.OU)+len(a.DNS)+len(a.URI)+len(a.Email)+len(a.SPKISHA256) == 0
}

// Allows reports whether cert's identity is on the list.
func (a *AllowList) Allows(cert *x509.Certificate) bool {
	if a.empty() {
		return true
	}
	if slices.Contains(a.CN, cert.Subject.CommonName) {
		return true
	}
	for _, ou := range cert.Subject.OrganizationalUnit {
		if slices.Contains(a.OU, ou) {
			return true
		}
	}
	for _, p := range a.DNS {
		for _, n := range cert.DNSNames {
			if MatchDNS(p, n) {
				return true
			}
		}
	}
	for _, p := range a.URI {
		for _, u := range cert.URIs {
			if MatchURI(p, u.String()) {
				return true
			}
		}
	}
	for _, p := range a.Email {
		for _, e := range cert.EmailAddresses {
			if strings.EqualFold(p, e) {
				return true
			}
		}
	}
	if len(a.SPKISHA256) > 0 {
		sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
		if slices.Contains(a.SPKISHA256, hex.EncodeToString(sum[:])) {
			return true
		}
	}
	return false
}

// MatchDNS matches a DNS name against a pattern; "*." as the first label matches exactly
// one non-empty label.
func MatchDNS(pattern, name string) bool {
	pattern, name = strings.ToLower(strings.TrimSuffix(pattern, ".")), strings.ToLower(strings.TrimSuffix(name, "."))
	if rest, ok := strings.CutPrefix(pattern, "*."); ok {
		label, tail, found := strings.Cut(name, ".")
		return found && label != "" && label != "*" && tail == rest
	}
	return pattern == name
}

// MatchURI matches a URI against a pattern split on "/": "*" matches one whole segment,
// "**" one or more; every other segment matches exactly.
func MatchURI(pattern, uri string) bool {
	return matchSegments(strings.Split(pattern, "/"), strings.Split(uri, "/"))
}

func matchSegments(p, s []string) bool {
	for len(p) > 0 {
		switch p[0] {
		case "**":
			for i := 1; i <= len(s); i++ {
				if s[i-1] == "" {
					return false
				}
				if matchSegments(p[1:], s[i:]) {
					return true
				}
			}
			return false
		case "*":
			if len(s) == 0 || s[0] == "" {
				return false
			}
		default:
			if len(s) == 0 || s[0] != p[0] {
				return false
			}
		}
		p, s = p[1:], s[1:]
	}
	return len(s) == 0
}
