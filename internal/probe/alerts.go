package probe

import (
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"syscall"
)

// Diagnosis is a cause and a fix in plain words.
type Diagnosis struct {
	Alert string `json:"alert,omitempty"` // the TLS alert, when the failure is one
	Cause string `json:"cause"`
	Fix   string `json:"fix"`
}

// alerts maps every TLS alert crypto/tls can report (the text after "remote error:
// tls: ", crypto/tls alert.go) to its usual cause and fix. crypto/tls gives a client no
// typed value for a received alert over TCP, so its text is the key.
var alerts = map[string]Diagnosis{
	"close notify":                    {Cause: "the server closed the connection cleanly during the handshake", Fix: "check the server's log; it may require SNI or a client certificate it did not ask for"},
	"unexpected message":              {Cause: "the two sides disagree on the handshake sequence (often a middlebox or a broken TLS stack)", Fix: "try --tls 1.2 and check for proxies in between"},
	"bad record MAC":                  {Cause: "a record failed its integrity check: corruption or a middlebox rewriting traffic", Fix: "check the network path for TLS-intercepting devices"},
	"decryption failed":               {Cause: "a record could not be decrypted", Fix: "check the network path; retry with --tls 1.2"},
	"record overflow":                 {Cause: "a TLS record was larger than allowed", Fix: "check for a middlebox or a non-conforming peer"},
	"decompression failure":           {Cause: "TLS compression failed (compression is obsolete)", Fix: "disable TLS compression on the server"},
	"handshake failure":               {Cause: "the server refused the handshake: no common cipher suite or group, or (TLS 1.2) mutual authentication and no client certificate was sent", Fix: "give --cert/--key if the server wants a client certificate; otherwise compare the server's cipher and version policy with --tls 1.2/1.3"},
	"bad certificate":                 {Cause: "the server rejected the client certificate after checking it: revoked, wrong usage, not on an allow-list, or failing a check of its own", Fix: "see the checks of the client certificate; the server's log names the reason (tlsgate logs a reason code)"},
	"unsupported certificate":         {Cause: "the peer cannot use this certificate type or its key usage", Fix: "issue a certificate with EKU clientAuth (client) or serverAuth (server) and a supported key type"},
	"revoked certificate":             {Cause: "the client certificate is revoked", Fix: "issue a new certificate; check the CRL the server uses"},
	"expired certificate":             {Cause: "the client certificate is expired or not yet valid (by the server's clock); an OpenSSL-based server also says so when its CRL is past its next update", Fix: "renew the certificate, or check the clocks of both machines"},
	"unknown certificate":             {Cause: "the server could not use the client certificate for an unspecified reason", Fix: "check the server's log"},
	"illegal parameter":               {Cause: "a handshake field was out of range or inconsistent", Fix: "check for a middlebox; try --tls 1.2"},
	"unknown certificate authority":   {Cause: "the client certificate does not chain to a CA the server trusts", Fix: "use a certificate from one of the acceptable CAs listed above, and send its intermediates (openssl: -cert_chain; curl sends the whole --cert file)"},
	"access denied":                   {Cause: "the certificate was valid but the server's access control refused it", Fix: "ask for your identity to be added to the server's allow-list"},
	"error decoding message":          {Cause: "a handshake message could not be parsed", Fix: "check for a middlebox or a non-conforming peer"},
	"error decrypting message":        {Cause: "a signature or key exchange failed: with a client certificate, the private key does not match it", Fix: "give the key that belongs to the certificate (tlsgate cert inspect shows key match)"},
	"export restriction":              {Cause: "an export-grade setting was refused (obsolete)", Fix: "use a current TLS configuration"},
	"protocol version not supported":  {Cause: "client and server share no TLS version", Fix: "compare versions: try --tls 1.2 or --tls 1.3; TLS 1.0/1.1 are obsolete"},
	"insufficient security level":     {Cause: "the server requires stronger ciphers or keys than offered", Fix: "use a stronger key or newer TLS version"},
	"internal error":                  {Cause: "the server hit an internal error (often: its certificate or key failed to load)", Fix: "check the server's log"},
	"inappropriate fallback":          {Cause: "the client retried with a lower version than it supports", Fix: "do not force a lower TLS version"},
	"user canceled":                   {Cause: "the peer canceled the handshake", Fix: "check the server's log"},
	"no renegotiation":                {Cause: "renegotiation was refused", Fix: "do not renegotiate; TLS 1.3 has none"},
	"missing extension":               {Cause: "a required TLS extension was missing", Fix: "use a current client; try --tls 1.3"},
	"unsupported extension":           {Cause: "an extension was sent that the peer did not offer or support", Fix: "check for a non-conforming peer"},
	"certificate unobtainable":        {Cause: "the certificate could not be fetched from a URL", Fix: "send the certificate itself"},
	"unrecognized name":               {Cause: "the server has no certificate for the requested name (SNI)", Fix: "use --servername with a name the server serves"},
	"bad certificate status response": {Cause: "an OCSP staple was invalid", Fix: "check the server's OCSP stapling"},
	"bad certificate hash value":      {Cause: "a certificate hash did not match", Fix: "check the certificate files"},
	"unknown PSK identity":            {Cause: "the pre-shared key identity is unknown", Fix: "check PSK settings"},
	"certificate required":            {Cause: "the server requires a client certificate (mutual authentication) and none was sent, or none matched its acceptable CAs", Fix: "give --cert and --key (or --p12) with a certificate from one of the acceptable CAs"},
	"no application protocol":         {Cause: "no common application protocol (ALPN)", Fix: "the server does not speak HTTP/1.1 or h2 here: probe it as host:port"},
	"encrypted client hello required": {Cause: "the server requires Encrypted Client Hello", Fix: "use a client with ECH configuration"},
}

// localErrors are failures of the client side (no alert received), by a fragment of
// Go's error text, most specific first.
var localErrors = []struct {
	fragment string
	d        Diagnosis
}{
	{"first record does not look like a TLS handshake", Diagnosis{Cause: "the server did not answer with TLS: it speaks plain TCP/HTTP on this port", Fix: "use the TLS port, or put a TLS listener (tcp_ssl/https) in front"}},
	{"server selected unsupported protocol version", Diagnosis{Cause: "the server chose a TLS version this client does not allow", Fix: "try --tls 1.2 or enable TLS 1.2+ on the server"}},
	{"no cipher suite supported", Diagnosis{Cause: "no common cipher suite", Fix: "compare the server's policy with the client's"}},
	{"connection reset by peer", Diagnosis{Cause: "the server reset the connection during the handshake: often a plain server, a firewall, or a proxy expecting PROXY protocol", Fix: "check that the port serves TLS and whether it expects a PROXY header"}},
	{"EOF", Diagnosis{Cause: "the server closed the connection without a TLS alert", Fix: "the server may not speak TLS here, may require SNI (--servername), or dropped the client; check its log"}},
}

// Diagnose explains a handshake or read error seen by the client.
func Diagnose(err error) Diagnosis {
	if err == nil {
		return Diagnosis{}
	}
	msg := err.Error()
	if _, text, ok := strings.Cut(msg, "remote error: tls: "); ok {
		if d, ok := alerts[text]; ok {
			d.Alert = text
			return d
		}
	}
	var hn x509.HostnameError
	if errors.As(err, &hn) {
		return Diagnosis{Cause: "the server certificate is not valid for the name requested", Fix: "connect with a name the certificate lists (or --servername), or reissue the certificate with this name as a SAN"}
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return Diagnosis{Cause: "the server certificate does not chain to a trusted root: self-signed, a private CA not given with --ca, or a missing intermediate", Fix: "pass the CA with --ca, or make the server send its intermediates"}
	}
	if ci, ok := errors.AsType[x509.CertificateInvalidError](err); ok && ci.Reason == x509.Expired {
		return Diagnosis{Cause: "the server certificate is expired or not yet valid", Fix: "renew the server certificate or check clocks"}
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return Diagnosis{Cause: "nothing listens on that address", Fix: "check host and port, and that the server is running"}
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return Diagnosis{Cause: "the server did not answer in time", Fix: "check firewalls and that the port is the TLS port"}
	}
	for _, l := range localErrors {
		if strings.Contains(msg, l.fragment) {
			return l.d
		}
	}
	return Diagnosis{Cause: msg, Fix: "see the steps above"}
}
