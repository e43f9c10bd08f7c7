package httpproxy

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"

	"tlsgate/internal/certfile"
	"tlsgate/internal/clientauth"
)

// Header names of the xfcc and rfc9440 dialects.
const (
	HeaderXFCC     = "X-Forwarded-Client-Cert"
	HeaderCertRFC  = "Client-Cert"
	HeaderChainRFC = "Client-Cert-Chain"
)

// SetXFCC writes Envoy's x-forwarded-client-cert element for a verified client:
// Hash, Cert (URL-encoded PEM), Chain, Subject, URI and DNS. tlsgate is the edge, so the
// header holds only its own element (the client's was stripped).
func SetXFCC(h http.Header, v clientauth.Verdict) {
	if !v.Verified() {
		return
	}
	leaf := v.Chain[0]
	id := clientauth.IdentityOf(leaf)
	parts := []string{
		"Hash=" + id.Fingerprint,
		"Cert=" + quoteXFCC(urlPEM(leaf.Raw)),
		"Chain=" + quoteXFCC(urlPEM(chainDER(v)...)),
		"Subject=" + quoteXFCC(Escape(id.Subject)),
	}
	for _, u := range id.URIs {
		parts = append(parts, "URI="+quoteXFCC(Escape(u)))
	}
	for _, d := range id.DNSNames {
		parts = append(parts, "DNS="+quoteXFCC(Escape(d)))
	}
	h.Set(HeaderXFCC, strings.Join(parts, ";"))
}

// quoteXFCC double-quotes a value and backslash-escapes '"' and '\', as Envoy does, so
// ',', ';' and '=' inside it cannot start a new field or element.
func quoteXFCC(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}

func urlPEM(ders ...[]byte) string {
	var b strings.Builder
	for _, d := range ders {
		b.Write(certfile.EncodeDERAsPEM(d))
	}
	return strings.ReplaceAll(url.QueryEscape(b.String()), "+", "%20")
}

// chainDER is the verified chain without the root: what the client sent and the server
// relied on (RFC 9440 §2.2 leaves the trust anchor out).
func chainDER(v clientauth.Verdict) [][]byte {
	var out [][]byte
	for _, c := range v.Chain {
		out = append(out, c.Raw)
	}
	if len(out) > 1 {
		out = out[:len(out)-1]
	}
	return out
}

// SetRFC9440 writes Client-Cert (the leaf) and Client-Cert-Chain (the intermediates) as
// structured-field byte sequences (RFC 9440) for a verified client.
func SetRFC9440(h http.Header, v clientauth.Verdict) {
	if !v.Verified() {
		return
	}
	h.Set(HeaderCertRFC, ":"+base64.StdEncoding.EncodeToString(v.Chain[0].Raw)+":")
	chain := chainDER(v)[1:]
	if len(chain) == 0 {
		return
	}
	items := make([]string, len(chain))
	for i, d := range chain {
		items[i] = ":" + base64.StdEncoding.EncodeToString(d) + ":"
	}
	h.Set(HeaderChainRFC, strings.Join(items, ", "))
}
