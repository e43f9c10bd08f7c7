package server_test

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"tlsgate/internal/pki"
)

// TestProxyProtocolParity covers S4 for PROXY-protocol entry paths: a mutual https
// listener behind a trusted front (accept_proxy_protocol) refuses a proxied client
// without a certificate as a direct one is refused (no_client_cert), serves a proxied
// client with one under the address the header names, and a listener that trusts only
// 10.0.0.0/8 does not take a PROXY header from 127.0.0.1 (no forged client address,
// no request served).
func TestProxyProtocolParity(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		return "", "  - {id: behind, protocol: https, listen: 127.0.0.1:0, target_group: web, accept_proxy_protocol: [127.0.0.0/8],\n" +
			"     ssl: {mode: mutual, server_certificates: [site], ca_certificate: clients}}\n" +
			"  - {id: elsewhere, protocol: https, listen: 127.0.0.1:0, target_group: web, accept_proxy_protocol: [10.0.0.0/8],\n" +
			"     ssl: {mode: mutual, server_certificates: [site], ca_certificate: clients}}\n"
	})
	alice := new(e.ca.Issue("alice").TLS())
	get := func(id string, cert *tls.Certificate) (*echo, error) {
		t.Helper()
		raw, err := net.Dial("tcp", e.addr(id))
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		raw.SetDeadline(time.Now().Add(10 * time.Second))
		h := proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.ParseIP("203.0.113.7"), Port: 4444}, raw.RemoteAddr())
		if _, err := h.WriteTo(raw); err != nil {
			t.Fatal(err)
		}
		c := tls.Client(raw, e.tlsConfig(tls.VersionTLS13, cert))
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"); err != nil {
			return nil, err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var got echo
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			return nil, err
		}
		return &got, nil
	}
	if _, err := get("behind", nil); err == nil {
		t.Fatal("proxied client without a certificate served")
	}
	line := e.sink.Next(t, map[string]any{"msg": "handshake", "listener": "behind"})
	if line["reason"] != "no_client_cert" || line["client"] != "203.0.113.7:4444" {
		t.Fatalf("line %v", line)
	}
	got, err := get("behind", alice)
	if err != nil {
		t.Fatal(err)
	}
	if got.Headers["X-Forwarded-For"] != "203.0.113.7" || got.Headers["X-Client-Verify"] != "SUCCESS" {
		t.Fatalf("backend saw XFF %q, verify %q", got.Headers["X-Forwarded-For"], got.Headers["X-Client-Verify"])
	}
	if got, err := get("elsewhere", alice); err == nil {
		t.Fatalf("an untrusted source's PROXY header was taken: backend saw XFF %q", got.Headers["X-Forwarded-For"])
	}
}
