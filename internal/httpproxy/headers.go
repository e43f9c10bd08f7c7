package httpproxy

import (
	"crypto/tls"
	"net/http"
	"strings"
	"time"

	"tlsgate/internal/clientauth"
)

// Identity headers set by the headers dialect (SPEC §4).
const (
	HeaderVerify      = "X-Client-Verify"
	HeaderCert        = "X-Client-Cert"
	HeaderSubject     = "X-Client-Cert-Subject"
	HeaderIssuer      = "X-Client-Cert-Issuer"
	HeaderSerial      = "X-Client-Cert-Serial"
	HeaderFingerprint = "X-Client-Cert-Fingerprint"
	HeaderNotBefore   = "X-Client-Cert-Not-Before"
	HeaderNotAfter    = "X-Client-Cert-Not-After"
	HeaderSANURI      = "X-Client-Cert-SAN-URI"
	HeaderSANDNS      = "X-Client-Cert-SAN-DNS"
	// HeaderGrace is "true" when the certificate is past its NotAfter and was accepted
	// only by the listener's expiry_grace.
	HeaderGrace = "X-Client-Cert-Grace"
	HeaderProto = "X-Client-Proto"
)

// identityPrefixes are lower-case name prefixes of headers that carry a client identity
// in tlsgate or in the proxies our users migrate from (Envoy XFCC, Traefik, nginx and
// HAProxy conventions, RFC 9440, AWS ALB mTLS, IIS ARR's X-ARR-ClientCert, which
// ASP.NET Core's certificate forwarding reads by default). A client must never be able to send one:
// backends trust them (S3: Traefik #5061, OpenShift CVE-2026-46579, FortiClient EMS
// CVE-2026-35616).
var identityPrefixes = []string{
	"x-client-",
	"x-forwarded-client-cert",
	"x-forwarded-tls-client-cert",
	"x-ssl-client",
	"x-ssl-cert",
	"ssl-client",
	"client-cert",
	"x-amzn-mtls-",
	"x-arr-clientcert",
}

// IsIdentityHeader reports whether name (any case, "_" or "-") is an identity header.
// Underscores count as dashes because CGI-style backends (and nginx with
// underscores_in_headers) fold them together.
// It runs for every header of every request, so it compares in place.
func IsIdentityHeader(name string) bool {
	for _, p := range identityPrefixes {
		if len(name) >= len(p) && foldedPrefix(name, p) {
			return true
		}
	}
	return false
}

// foldedPrefix reports whether name begins with p (lower case, dashes) once name's
// letters are lowered and its underscores made dashes.
func foldedPrefix(name, p string) bool {
	for i := 0; i < len(p); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		} else if c == '_' {
			c = '-'
		}
		if c != p[i] {
			return false
		}
	}
	return true
}

// IsForwardedHeader reports whether name (any case, "_" or "-", as IsIdentityHeader) is
// one of the headers that describe the hop tlsgate is or the client's address, which
// tlsgate sets itself or leaves unset and a client must not supply: the X-Forwarded-
// family (-For, -Host, -Proto, -Port, -Prefix, -Ssl, ...), Forwarded, X-Real-IP and
// True-Client-IP. The spellings with underscores matter for the same reason as there:
// CGI-style backends fold X_Forwarded_For into X-Forwarded-For's variable.
func IsForwardedHeader(name string) bool {
	if name == "" {
		return false
	}
	switch name[0] | 0x20 { // a lowered letter; no other byte of a token maps onto these
	case 'x':
		return len(name) >= len("x-forwarded-") && foldedPrefix(name, "x-forwarded-") ||
			len(name) == len("x-real-ip") && foldedPrefix(name, "x-real-ip")
	case 'f':
		return len(name) == len("forwarded") && foldedPrefix(name, "forwarded")
	case 't':
		return len(name) == len("true-client-ip") && foldedPrefix(name, "true-client-ip")
	}
	return false
}

// StripIdentity removes every identity header from h.
func StripIdentity(h http.Header) {
	for name := range h {
		if IsIdentityHeader(name) {
			delete(h, name)
		}
	}
}

// SetIdentity writes the headers dialect for one verdict. One-way listeners say NONE.
func SetIdentity(h http.Header, v clientauth.Verdict, cs *tls.ConnectionState) {
	h.Set(HeaderProto, tls.VersionName(cs.Version))
	h.Set(HeaderVerify, v.Header())
	if !v.Verified() {
		return
	}
	leaf := v.Chain[0]
	id := clientauth.IdentityOf(leaf)
	// URL-encoded PEM as nginx's $ssl_client_escaped_cert: spaces as %20, not '+'.
	h.Set(HeaderCert, urlPEM(leaf.Raw))
	h.Set(HeaderSubject, Escape(id.Subject))
	h.Set(HeaderIssuer, Escape(id.Issuer))
	h.Set(HeaderSerial, id.Serial)
	h.Set(HeaderFingerprint, id.Fingerprint)
	h.Set(HeaderNotBefore, id.NotBefore.UTC().Format(time.RFC3339))
	h.Set(HeaderNotAfter, id.NotAfter.UTC().Format(time.RFC3339))
	if v.Grace {
		h.Set(HeaderGrace, "true")
	}
	if len(id.URIs) > 0 {
		h.Set(HeaderSANURI, Escape(strings.Join(id.URIs, ",")))
	}
	if len(id.DNSNames) > 0 {
		h.Set(HeaderSANDNS, Escape(strings.Join(id.DNSNames, ",")))
	}
}

// Escape percent-encodes '%', control characters and non-ASCII bytes, so a certificate
// field can neither break the header (CR/LF, NUL) nor smuggle look-alike text; backends
// decode it with any URL unescape function.
func Escape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' || c < 0x20 || c >= 0x7f {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
