package httpproxy_test

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"testing"

	"tlsgate/internal/clientauth"
	"tlsgate/internal/httpproxy"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
)

// BenchmarkHeaders strips a request's identity headers and writes each dialect for a
// verified client.
func BenchmarkHeaders(b *testing.B) {
	ca := pkitest.New(b, "root", pki.ECDSAP256)
	leaf := ca.Issue("alice", pkitest.URI("spiffe://example.org/alice"))
	v := clientauth.Verdict{Chain: []*x509.Certificate{leaf.Cert, ca.Cert}, Presented: leaf.Cert}
	cs := &tls.ConnectionState{Version: tls.VersionTLS13}
	for _, tc := range []struct {
		name string
		set  func(http.Header)
	}{
		{"headers", func(h http.Header) { httpproxy.SetIdentity(h, v, cs) }},
		{"xfcc", func(h http.Header) { httpproxy.SetXFCC(h, v) }},
		{"rfc9440", func(h http.Header) { httpproxy.SetRFC9440(h, v) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				h := http.Header{"Accept": {"*/*"}, "X-Client-Verify": {"SUCCESS"}, "User-Agent": {"bench"}}
				httpproxy.StripIdentity(h)
				tc.set(h)
			}
		})
	}
}
