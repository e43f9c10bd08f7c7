// Package probe walks a TLS handshake as a client and records each step — TCP connect,
// ClientHello, ServerHello, the server chain and its checks, CertificateRequest, the
// client certificate sent, the server's verdict, the HTTP status — as events through a
// Trace hook, then gives one plain-language verdict. It prints nothing: cli renders the
// events as text or JSON. Its checks reuse clientauth and revocation, so it names
// failures with the same reason codes as the server.
package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"time"
)

// Status is the outcome of a step or check.
type Status string

// Statuses.
const (
	Pass Status = "pass"
	Fail Status = "fail"
	Info Status = "info"
	Warn Status = "warn"
)

// Check is one pass/fail test inside a step.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
}

// Step is one numbered event of the probe.
type Step struct {
	N      int      `json:"step"`
	Kind   string   `json:"kind"`
	Title  string   `json:"title"`
	Status Status   `json:"status"`
	Lines  []string `json:"lines,omitempty"`
	Checks []Check  `json:"checks,omitempty"`
}

// Trace receives steps as they happen.
type Trace struct {
	Step func(Step)
}

// Options configure a probe.
type Options struct {
	Target Target
	// Roots verify the server; nil means the system roots.
	Roots *x509.CertPool
	// ClientCert is presented when the server asks (leaf first, then intermediates).
	ClientCert *tls.Certificate
	// ServerName is sent as SNI and checked against the certificate; default: the host.
	ServerName string
	// CRLs are CRL files (PEM or DER) checked against the server chain and the client's.
	CRLs [][]byte
	// Version pins TLS 1.2 or 1.3; 0 offers both.
	Version uint16
	// Timeout bounds connect, handshake and the verdict read. Default 10s.
	Timeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Dial connects; nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Result is the probe's conclusion.
type Result struct {
	OK        bool      `json:"ok"`
	Verdict   string    `json:"verdict"`
	Diagnosis Diagnosis `json:"diagnosis"`
	// Reason is tlsgate's reason code for a client-certificate failure probe could pin
	// down on the client side ("" when none).
	Reason string `json:"reason,omitempty"`
}
