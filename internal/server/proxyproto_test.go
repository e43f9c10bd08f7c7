package server_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/pires/go-proxyproto"
	"github.com/pires/go-proxyproto/tlvparse"

	"tlsgate/internal/pki"
)

// TestProxyProtocolV2Sent: a tcp_ssl listener with proxy_protocol: v2 tells the backend
// the client's address and its TLS identity in the SSL TLV.
func TestProxyProtocolV2Sent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	headers := make(chan *proxyproto.Header, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		h, err := proxyproto.Read(br)
		if err != nil {
			close(headers)
			return
		}
		headers <- h
		_, _ = io.Copy(c, br) // then echo
	}()
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		e.groups = fmt.Sprintf("  - {id: pp, targets: [{address: %s}]}\n", ln.Addr())
		return "", "  - {id: ppv2, protocol: tcp_ssl, listen: 127.0.0.1:0, target_group: pp, proxy_protocol: v2,\n" +
			"     ssl: {mode: mutual, server_certificates: [site], ca_certificate: clients}}\n"
	})
	alice := e.ca.Issue("alice")
	c, err := tls.Dial("tcp", e.addr("ppv2"), e.tlsConfig(tls.VersionTLS13, new(alice.TLS())))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echoOnce(t, c, "ping")
	h, ok := <-headers
	if !ok {
		t.Fatal("backend got no PROXY header")
	}
	src, _, _ := h.TCPAddrs()
	if h.Version != 2 || src.String() != c.LocalAddr().String() {
		t.Fatalf("header v%d from %v, want v2 from %v", h.Version, src, c.LocalAddr())
	}
	tlvs, err := h.TLVs()
	if err != nil {
		t.Fatal(err)
	}
	var ssl *tlvparse.PP2SSL
	for _, tlv := range tlvs {
		if tlvparse.IsSSL(tlv) {
			s, err := tlvparse.SSL(tlv)
			if err != nil {
				t.Fatal(err)
			}
			ssl = &s
		}
	}
	if ssl == nil || !ssl.ClientSSL() || !ssl.ClientCertConn() || !ssl.Verified() {
		t.Fatalf("SSL TLV %+v", ssl)
	}
	cn, _ := ssl.ClientCN()
	ver, _ := ssl.SSLVersion()
	der, _ := ssl.ClientCert()
	if cn != "alice" || ver != "TLS 1.3" || string(der) != string(alice.Cert.Raw) {
		t.Fatalf("CN %q, version %q, cert match %v", cn, ver, string(der) == string(alice.Cert.Raw))
	}
}

// TestAcceptProxyProtocol: behind a trusted front the client address comes from the
// PROXY header; a trusted front that sends none is refused.
func TestAcceptProxyProtocol(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		return "", "  - {id: behind, protocol: tcp_ssl, listen: 127.0.0.1:0, target_group: echo, accept_proxy_protocol: [127.0.0.0/8],\n" +
			"     ssl: {mode: one_way, server_certificates: [site]}}\n"
	})
	raw, err := net.Dial("tcp", e.addr("behind"))
	if err != nil {
		t.Fatal(err)
	}
	h := proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.ParseIP("203.0.113.7"), Port: 4444}, raw.RemoteAddr())
	if _, err := h.WriteTo(raw); err != nil {
		t.Fatal(err)
	}
	c := tls.Client(raw, e.tlsConfig(tls.VersionTLS13, nil))
	echoOnce(t, c, "hi")
	c.Close()
	line := e.sink.Next(t, map[string]any{"msg": "connection", "listener": "behind"})
	if line["client"] != "203.0.113.7:4444" {
		t.Fatalf("client %v, want the address from the PROXY header", line["client"])
	}
	if _, err := tls.Dial("tcp", e.addr("behind"), e.tlsConfig(tls.VersionTLS13, nil)); err == nil {
		t.Fatal("a trusted source without a PROXY header was served")
	}
}
