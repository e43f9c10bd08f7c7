package clientauth

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"strings"
	"time"
)

// untyped lists crypto/tls handshake errors that carry no type, by a fragment of their
// text (crypto/tls handshake_server*.go, go1.26). This is the one place tlsgate reads an
// error string, because crypto/tls offers nothing else for these cases; a test runs a
// real handshake for each entry so a change of wording in Go fails the build.
var untyped = []struct {
	fragment string
	reason   Reason
}{
	{"client didn't provide a certificate", NoClientCert},
	{"invalid signature by the client certificate", BadSignature},
	{"client certificate used with invalid signature algorithm", BadSignature},
	{"client offered only unsupported versions", ProtocolMismatch},
	{"no cipher suite supported by both client and server", ProtocolMismatch},
	{"client offered TLS version older than TLS 1.3", ProtocolMismatch},
	{"no key exchanges supported by both client and server", ProtocolMismatch},
	{"client requested unsupported application protocols", ProtocolMismatch},
	{"first record does not look like a TLS handshake", NotTLS},
}

// HandshakeReason classifies the error of a failed server-side handshake.
func HandshakeReason(err error, now time.Time) Reason {
	if err == nil {
		return OK
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Reason
	}
	if ve, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return ChainReason(ve.Err, now)
	}
	if _, ok := errors.AsType[tls.RecordHeaderError](err); ok {
		return NotTLS
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return Timeout
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return Timeout
	}
	msg := err.Error()
	for _, u := range untyped {
		if strings.Contains(msg, u.fragment) {
			return u.reason
		}
	}
	return HandshakeError
}
