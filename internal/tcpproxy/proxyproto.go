package tcpproxy

import (
	"crypto/tls"
	"net"

	"github.com/pires/go-proxyproto"
	"github.com/pires/go-proxyproto/tlvparse"

	"tlsgate/internal/clientauth"
)

// ProxyHeader builds a PROXY protocol header (version 1 or 2) for a connection from
// src to dst. Version 2 carries the SSL TLV for a TLS connection (RFC-less but HAProxy's
// spec §2.2.6): client used TLS, presented a certificate (on this connection or, when
// resumed, the session), whether it verified, the TLS version, the client's CN, the
// cipher and the client certificate; plus ALPN and the SNI as authority.
func ProxyHeader(version byte, src, dst net.Addr, cs *tls.ConnectionState, v clientauth.Verdict) ([]byte, error) {
	h := proxyproto.HeaderProxyFromAddrs(version, src, dst)
	if version == 2 && cs != nil {
		if err := h.SetTLVs(sslTLVs(cs, v)); err != nil {
			return nil, err
		}
	}
	return h.Format()
}

func sslTLVs(cs *tls.ConnectionState, v clientauth.Verdict) []proxyproto.TLV {
	ssl := tlvparse.PP2SSL{Client: tlvparse.PP2_BITFIELD_CLIENT_SSL, Verify: 1}
	if v.Presented != nil {
		if cs.DidResume {
			ssl.Client |= tlvparse.PP2_BITFIELD_CLIENT_CERT_SESS
		} else {
			ssl.Client |= tlvparse.PP2_BITFIELD_CLIENT_CERT_CONN
		}
	}
	if v.Verified() {
		ssl.Verify = 0
	}
	ssl.TLV = []proxyproto.TLV{
		{Type: proxyproto.PP2_SUBTYPE_SSL_VERSION, Value: []byte(tls.VersionName(cs.Version))},
		{Type: proxyproto.PP2_SUBTYPE_SSL_CIPHER, Value: []byte(tls.CipherSuiteName(cs.CipherSuite))},
	}
	if v.Verified() {
		leaf := v.Chain[0]
		ssl.TLV = append(ssl.TLV,
			proxyproto.TLV{Type: proxyproto.PP2_SUBTYPE_SSL_CN, Value: []byte(leaf.Subject.CommonName)},
			proxyproto.TLV{Type: proxyproto.PP2_SUBTYPE_SSL_CLIENT_CERT, Value: leaf.Raw})
	}
	tlvs := make([]proxyproto.TLV, 0, 3)
	if t, err := ssl.Marshal(); err == nil {
		tlvs = append(tlvs, t)
	}
	if cs.NegotiatedProtocol != "" {
		tlvs = append(tlvs, proxyproto.TLV{Type: proxyproto.PP2_TYPE_ALPN, Value: []byte(cs.NegotiatedProtocol)})
	}
	if cs.ServerName != "" {
		tlvs = append(tlvs, proxyproto.TLV{Type: proxyproto.PP2_TYPE_AUTHORITY, Value: []byte(cs.ServerName)})
	}
	return tlvs
}
