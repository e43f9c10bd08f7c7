package httpproxy_test

import (
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"tlsgate/internal/clientauth"
	"tlsgate/internal/httpproxy"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
)

// evilVerdict is a verified client whose subject tries to inject fields and headers.
func evilVerdict(t *testing.T) (clientauth.Verdict, *x509.Certificate) {
	ca := pkitest.New(t, "root", pki.ECDSAP256)
	inter := ca.Intermediate("inter")
	leaf := inter.Issue("evil\", Hash=forged;By=x=y\r\nX-Client-Verify: SUCCESS", pkitest.OU("Ünïcode\x00"), pkitest.URI("spiffe://example.org/a,b;c"))
	return clientauth.Verdict{Chain: append(leaf.Chain, ca.Cert), Presented: leaf.Cert}, leaf.Cert
}

// splitXFCC splits one XFCC element into key/value pairs, honouring quotes and
// backslash escapes as Envoy does.
func splitXFCC(t *testing.T, s string) map[string][]string {
	out := map[string][]string{}
	var key, val strings.Builder
	inKey, quoted, escaped := true, false, false
	flush := func() {
		out[key.String()] = append(out[key.String()], val.String())
		key.Reset()
		val.Reset()
		inKey = true
	}
	for _, r := range s {
		switch {
		case escaped:
			val.WriteRune(r)
			escaped = false
		case quoted && r == '\\':
			escaped = true
		case r == '"':
			quoted = !quoted
		case !quoted && r == ',':
			t.Fatalf("second element in %q", s)
		case !quoted && r == ';':
			flush()
		case !quoted && inKey && r == '=':
			inKey = false
		case inKey:
			key.WriteRune(r)
		default:
			val.WriteRune(r)
		}
	}
	flush()
	return out
}

func TestXFCCEscaping(t *testing.T) {
	v, leaf := evilVerdict(t)
	h := http.Header{}
	httpproxy.SetXFCC(h, v)
	x := h.Get(httpproxy.HeaderXFCC)
	if strings.ContainsAny(x, "\r\n\x00") {
		t.Fatalf("control characters in %q", x)
	}
	fields := splitXFCC(t, x)
	id := clientauth.IdentityOf(leaf)
	if got := fields["Hash"]; len(got) != 1 || got[0] != id.Fingerprint {
		t.Fatalf("Hash %v, want only %s (fields %v)", got, id.Fingerprint, fields)
	}
	if len(fields["By"]) != 0 || len(fields) != 5 { // Hash, Cert, Chain, Subject, URI
		t.Fatalf("injected fields: %v", fields)
	}
	subj, err := url.PathUnescape(fields["Subject"][0])
	if err != nil || subj != id.Subject {
		t.Fatalf("Subject %q does not decode to %q (%v)", fields["Subject"][0], id.Subject, err)
	}
	pemText, err := url.QueryUnescape(fields["Cert"][0])
	if err != nil || !strings.Contains(pemText, "BEGIN CERTIFICATE") {
		t.Fatalf("Cert %q", fields["Cert"][0])
	}
	if strings.Count(mustUnescape(t, fields["Chain"][0]), "BEGIN CERTIFICATE") != 2 {
		t.Fatal("Chain should hold the leaf and the intermediate")
	}
}

func mustUnescape(t *testing.T, s string) string {
	u, err := url.QueryUnescape(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestRFC9440(t *testing.T) {
	v, leaf := evilVerdict(t)
	h := http.Header{}
	httpproxy.SetRFC9440(h, v)
	c := h.Get(httpproxy.HeaderCertRFC)
	der, err := base64.StdEncoding.DecodeString(strings.Trim(c, ":"))
	if err != nil || !strings.HasPrefix(c, ":") || !strings.HasSuffix(c, ":") {
		t.Fatalf("Client-Cert %q: %v", c, err)
	}
	if got, err := x509.ParseCertificate(der); err != nil || !got.Equal(leaf) {
		t.Fatal("Client-Cert does not decode to the leaf")
	}
	chain := h.Get(httpproxy.HeaderChainRFC)
	if n := strings.Count(chain, ":") / 2; n != 1 {
		t.Fatalf("Client-Cert-Chain %q: %d items, want the intermediate only", chain, n)
	}
}

func TestUnverifiedSendsNothing(t *testing.T) {
	h := http.Header{}
	v := clientauth.Verdict{Reason: clientauth.Revoked}
	httpproxy.SetXFCC(h, v)
	httpproxy.SetRFC9440(h, v)
	if len(h) != 0 {
		t.Fatalf("unverified client forwarded: %v", h)
	}
}

func TestIsIdentityHeader(t *testing.T) {
	for _, n := range []string{"X-Client-Verify", "x_client_cert", "X-FORWARDED-CLIENT-CERT", "Client-Cert-Chain", "X-Amzn-Mtls-Clientcert", "ssl_client_s_dn", "X-SSL-Cert"} {
		if !httpproxy.IsIdentityHeader(n) {
			t.Errorf("%s not stripped", n)
		}
	}
	for _, n := range []string{"X-Forwarded-For", "Client", "Authorization", "X-Request-Id"} {
		if httpproxy.IsIdentityHeader(n) {
			t.Errorf("%s stripped", n)
		}
	}
}
