package listener

import (
	"crypto/x509"
	"time"

	"tlsgate/internal/clientauth"
	"tlsgate/internal/config"
)

// Observer is told of every TLS handshake a listener completes or fails, with its
// verdict: what the runtime view (the admin console, /api/v1/status) is fed from. It is
// called on the handshake path, so an implementation must be quick and safe for
// concurrent use; it must not keep h, whose fields it may copy.
type Observer interface {
	Handshake(h *Handshake)
}

// Handshake is one TLS handshake as its log line reports it, or one request a path
// rule's allow-list refused (Rule set).
type Handshake struct {
	Time     time.Time
	Listener string
	Client   string // the client's address
	Mode     config.SSLMode
	// Result is "success" or "failure", as the label of tlsgate_handshakes_total: a
	// client refused over HTTP (refusal: http) counts as a failure.
	Result string
	Reason clientauth.Reason
	// Presented is the leaf the client sent, verified or not; nil when none was sent.
	Presented *x509.Certificate
	// Subject, Serial and Fingerprint describe Presented as the log line does.
	Subject, Serial, Fingerprint string
	// Rule is the path of the rule that refused a request (reason not_allowed) on a
	// connection whose handshake was reported already; "" for a handshake.
	Rule string
}

// observe reports a handshake to the listener's observer, if any.
func (l *Listener) observe(line *Line, mode config.SSLMode, result string, presented *x509.Certificate) {
	if l.deps.Observer == nil {
		return
	}
	l.deps.Observer.Handshake(&Handshake{
		Time: time.Now(), Listener: line.Listener, Client: line.Client, Mode: mode,
		Result: result, Reason: line.Reason, Presented: presented,
		Subject: line.Subject, Serial: line.Serial, Fingerprint: line.Fingerprint,
	})
}

// observeRule reports a request refused by the allow-list of the rule for path.
func (l *Listener) observeRule(line *Line, presented *x509.Certificate, path string) {
	if l.deps.Observer == nil {
		return
	}
	l.deps.Observer.Handshake(&Handshake{
		Time: time.Now(), Listener: line.Listener, Client: line.Client, Result: "failure",
		Reason: clientauth.NotAllowed, Presented: presented, Rule: path,
		Subject: line.Subject, Serial: line.Serial, Fingerprint: line.Fingerprint,
	})
}
