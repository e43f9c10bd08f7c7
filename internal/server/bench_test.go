package server_test

import (
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"testing"

	"tlsgate/internal/pki"
)

// BenchmarkKeepAliveHTTPS measures one request on a kept-alive HTTPS connection through
// the proxy to the echo backend (client, tlsgate and backend in one process: use it for
// profiles and allocation counts, not for comparisons with other servers).
func BenchmarkKeepAliveHTTPS(b *testing.B) {
	e := newEnv(b, pki.ECDSAP256)
	tr := &http.Transport{TLSClientConfig: e.tlsConfig(tls.VersionTLS13, nil)}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	url := "https://" + e.addr("one_way") + "/"
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// BenchmarkResumedMutualHTTPS measures a resumed TLS 1.3 mutual handshake plus one
// proxied GET per connection.
func BenchmarkResumedMutualHTTPS(b *testing.B) {
	e := newEnv(b, pki.ECDSAP256)
	cfg := e.tlsConfig(tls.VersionTLS13, new(e.ca.Issue("alice").TLS()))
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(8)
	url := "https://" + e.addr("mutual") + "/"
	b.ReportAllocs()
	for b.Loop() {
		tr := &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}
		resp, err := (&http.Client{Transport: tr}).Get(url)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// BenchmarkKeepAliveTCPSSL measures one 1 KiB round trip on a kept-alive mutual TCP SSL
// connection through the relay to the TCP echo backend.
func BenchmarkKeepAliveTCPSSL(b *testing.B) {
	e := newEnv(b, pki.ECDSAP256)
	c, err := tls.Dial("tcp", e.addr("tcpssl"), e.tlsConfig(tls.VersionTLS13, new(e.ca.Issue("alice").TLS())))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg, got := bytes.Repeat([]byte("0123456789abcdef"), 64), make([]byte, 1024)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, got); err != nil {
			b.Fatal(err)
		}
	}
	if !bytes.Equal(got, msg) {
		b.Fatalf("echo returned %q", got[:16])
	}
}
