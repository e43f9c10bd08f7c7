package clientauth

import (
	"errors"
	"fmt"
)

// Reason is why a handshake or a client certificate was rejected. It is the one
// taxonomy shared by the log line, the metrics, X-Client-Verify, `cert verify` and probe.
type Reason string

// Reason codes (SPEC §1). The empty Reason means success.
const (
	OK              Reason = ""
	NoClientCert    Reason = "no_client_cert"
	UnknownCA       Reason = "unknown_ca"
	Expired         Reason = "expired"
	NotYetValid     Reason = "not_yet_valid"
	Revoked         Reason = "revoked"
	CRLUnavailable  Reason = "crl_unavailable"
	BadUsage        Reason = "bad_usage"
	NotAllowed      Reason = "not_allowed"
	BadSignature    Reason = "bad_signature"
	TooLarge        Reason = "too_large"
	Denied          Reason = "denied"
	OCSPUnavailable Reason = "ocsp_unavailable"
	// The reasons below are about the handshake, not the client certificate.
	ProtocolMismatch Reason = "protocol_mismatch" // no common version, cipher or ALPN
	Timeout          Reason = "handshake_timeout" // the client did not finish in time
	NotTLS           Reason = "not_tls"           // the client did not speak TLS
	HandshakeError   Reason = "handshake_error"   // anything else (client gone, bad record…)
)

// reasonInfo is one row of the reason table.
type reasonInfo struct {
	alert string // the TLS alert crypto/tls sends (SPEC §1); "" when none is sent
	text  string // plain-language meaning
	fix   string // what the client's owner can do, said to them (refusal: http)
}

// table maps every reason to its alert, meaning and fix. crypto/tls picks the alert itself:
// bad_certificate for every rejection made in a verification callback.
var table = map[Reason]reasonInfo{
	NoClientCert:     {"certificate_required (TLS 1.3) / handshake_failure (TLS 1.2)", "mutual authentication is required and the client sent no certificate", "send a client certificate issued by the CA this site trusts: in a browser, install it, reload the page and pick it when asked; with curl or tlsgate probe, give --cert and --key"},
	UnknownCA:        {"unknown_ca", "the client certificate does not chain to the configured CA bundle", "use a certificate issued by the CA this site trusts, and send its intermediate certificates with it"},
	Expired:          {"certificate_expired", "the client certificate has expired", "renew the certificate"},
	NotYetValid:      {"certificate_expired", "the client certificate is not valid yet", "wait until the certificate's start date, or check this computer's clock"},
	Revoked:          {"bad_certificate", "the client certificate is revoked by a CRL of its issuer", "ask the site's operator for a new certificate"},
	CRLUnavailable:   {"bad_certificate", "no current CRL covers the client certificate's issuer and the policy is fail_closed", "nothing on your side: the site cannot check revocation right now; tell its operator"},
	BadUsage:         {"bad_certificate", "the certificate may not be used for client authentication (EKU lacks clientAuth, or it is a CA certificate)", "use a certificate made for client authentication (extended key usage clientAuth), not a server or CA certificate"},
	NotAllowed:       {"bad_certificate", "the client certificate is valid but its identity is not on the listener's allow-list", "ask the site's operator to allow your certificate's identity"},
	BadSignature:     {"decrypt_error", "the client could not prove it holds the certificate's private key", "use the private key that belongs to the certificate"},
	OCSPUnavailable:  {"bad_certificate", "the client certificate's OCSP responder gave no usable answer and the policy is fail_closed", "nothing on your side: the site cannot check revocation right now; tell its operator"},
	Denied:           {"bad_certificate", "the client certificate's serial or public key is on the denylist", "ask the site's operator for a new certificate"},
	TooLarge:         {"bad_certificate", "the client sent more certificates, or larger ones, than the listener accepts (max_client_chain, max_client_cert_bytes)", "send a shorter chain (the leaf and its intermediates only)"},
	ProtocolMismatch: {"protocol_version / handshake_failure", "client and server share no TLS version, cipher suite or application protocol", "use a client that supports TLS 1.2 or 1.3"},
	Timeout:          {"", "the client did not complete the handshake in time", "retry; check the network"},
	NotTLS:           {"", "the client did not send a TLS ClientHello", "connect with https://"},
	HandshakeError:   {"", "the handshake failed for a reason other than the client certificate", "retry; the site's operator can see the reason in its log"},
}

// Reasons returns every reason code.
func Reasons() []Reason {
	rs := make([]Reason, 0, len(table))
	for r := range table {
		rs = append(rs, r)
	}
	return rs
}

// Alert is the TLS alert sent for r, as crypto/tls sends it.
func (r Reason) Alert() string { return table[r].alert }

// Text is the plain-language meaning of r.
func (r Reason) Text() string { return table[r].text }

// Fix is what the owner of a refused client certificate can do, in their words.
func (r Reason) Fix() string { return table[r].fix }

// Label is r as a metric label value: "ok" for success.
func (r Reason) Label() string {
	if r == OK {
		return "ok"
	}
	return string(r)
}

// Error is a rejection with its reason code. Callers match it with errors.AsType.
type Error struct {
	Reason Reason
	Err    error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("client certificate rejected: %s", e.Reason)
	}
	return fmt.Sprintf("client certificate rejected: %s: %v", e.Reason, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

func reject(r Reason, err error) *Error { return &Error{Reason: r, Err: err} }

// ReasonOf returns the reason carried by err, or HandshakeError when err carries none,
// or OK for a nil err.
func ReasonOf(err error) Reason {
	if err == nil {
		return OK
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Reason
	}
	return HandshakeError
}
