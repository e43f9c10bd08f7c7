package probe

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"syscall"
	"time"
)

// An alert 40 (handshake_failure, OpenSSL's "sslv3 alert handshake failure") says only
// that the server gave up. What probe saw before it narrows that down:
//   - the server asked for a client certificate and none was sent: under TLS 1.2 that
//     is how servers refuse a missing client certificate;
//   - the server refused before asking: no common cipher suite or group. Probe then
//     retries, each on a new connection, offering what it leaves out by default, and
//     names what the server accepted.

// refinement returns a more precise diagnosis of a failed handshake than its alert
// alone gives, or nil.
func (r *run) refinement(ctx context.Context, err error) *Diagnosis {
	if r.failed != nil {
		return nil // our own server-chain check failed: that is the cause
	}
	d := Diagnose(err)
	switch {
	case (d.Alert == "handshake failure" || d.Alert == "certificate required") && r.asked != nil && !r.sent:
		return &Diagnosis{Alert: d.Alert,
			Cause: "the server requires a client certificate (mutual authentication) and none was sent; under TLS 1.2 servers refuse with handshake_failure (\"sslv3 alert handshake failure\"), under TLS 1.3 with certificate_required",
			Fix:   "give --cert and --key (or --p12) with a certificate from one of the acceptable CAs listed above"}
	case d.Alert == "handshake failure" && r.asked == nil:
		return r.narrow(ctx, d)
	case d.Alert == "" && !r.chain && dropped(err):
		return r.proxyHeader(ctx)
	}
	return nil
}

// dropped reports a connection the server closed or reset without a TLS alert.
func dropped(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// proxyV2Local is a PROXY protocol v2 header with the LOCAL command (no addresses): a
// listener that requires PROXY headers (tlsgate's accept_proxy_protocol, HAProxy's
// accept-proxy, nginx's proxy_protocol) takes it and goes on with TLS.
var proxyV2Local = []byte("\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00")

// proxyHeader retries a handshake the server dropped before sending anything, this time
// after a PROXY v2 header (user-asks 2.5 item 7: the port may expect PROXY protocol).
// It returns a diagnosis when the server then answers with its certificate, else nil.
func (r *run) proxyHeader(ctx context.Context) *Diagnosis {
	// A server that answers PROXY-then-TLS answers at once; one that takes the header
	// for the start of a record may wait for more (bounded, not the whole --timeout).
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	raw, err := r.o.Dial(ctx, "tcp", r.o.Target.Addr())
	if err != nil {
		return nil
	}
	defer raw.Close()
	if _, err := raw.Write(proxyV2Local); err != nil {
		return nil
	}
	cs, err := r.handshakeToCertificate(ctx, raw, offer{})
	if err != nil {
		r.emit(Step{Kind: "retry", Title: "Retry after a PROXY protocol v2 header: dropped too", Status: Info, Lines: []string{err.Error()}})
		return nil
	}
	r.emit(Step{Kind: "retry", Title: "Retry after a PROXY protocol v2 header: the server answered with its certificate", Status: Warn,
		Lines: []string{"the server chose " + tls.VersionName(cs.Version) + ", " + tls.CipherSuiteName(cs.CipherSuite)}})
	return &Diagnosis{Cause: "the port expects a PROXY protocol header before TLS: it dropped the plain handshake and answered the same one sent after a PROXY v2 header",
		Fix: "connect through the load balancer that sends PROXY headers to this port, or stop requiring them for direct clients (tlsgate: accept_proxy_protocol; HAProxy: accept-proxy; nginx: proxy_protocol)"}
}

// offer is a ClientHello variation to retry with.
type offer struct {
	what    string // what it adds, for the step title
	suites  []uint16
	groups  []tls.CurveID
	minimum uint16 // lowest version offered; 0 means TLS 1.2
}

// narrow retries a handshake the server refused before asking for anything, offering
// legacy cipher suites, then every key-exchange group, then both.
func (r *run) narrow(ctx context.Context, d Diagnosis) *Diagnosis {
	var legacy []uint16
	for _, cs := range slices.Concat(tls.CipherSuites(), tls.InsecureCipherSuites()) {
		legacy = append(legacy, cs.ID)
	}
	every := append(slices.Clone(groups), tls.CurveP521)
	for _, o := range []offer{
		{what: "legacy TLS 1.2 cipher suites (CBC, RSA key exchange, 3DES) and TLS 1.0-1.1", suites: legacy, groups: groups, minimum: tls.VersionTLS10},
		{what: "every key-exchange group (P-521 too)", groups: every},
		{what: "both", suites: legacy, groups: every, minimum: tls.VersionTLS10},
	} {
		cs, err := r.retry(ctx, o)
		if err != nil {
			r.emit(Step{Kind: "retry", Title: "Retry offering " + o.what + ": refused too", Status: Info, Lines: []string{err.Error()}})
			continue
		}
		chose := tls.VersionName(cs.Version) + ", " + tls.CipherSuiteName(cs.CipherSuite)
		if cs.CurveID != 0 { // known at this point under TLS 1.3 only
			chose += ", group " + groupName(cs.CurveID)
		}
		r.emit(Step{Kind: "retry", Title: "Retry offering " + o.what + ": the server accepted", Status: Warn, Lines: []string{"the server chose " + chose}})
		return &Diagnosis{Alert: d.Alert, Cause: "the server accepts only what this client does not offer by default: it chose " + chose + unsafe(cs),
			Fix: "give the server a current policy (TLS 1.2+ with ECDHE and AES-GCM or ChaCha20, groups X25519 or P-256): current browsers and Go clients refuse what it needs"}
	}
	d.Cause = "the server refused the handshake before asking for a client certificate, and also when offered legacy cipher suites and every group: the cause is elsewhere (signature algorithms, the server name, or a policy of its own)"
	d.Fix = "check the server's log and its TLS policy; try --servername with a name it serves"
	return &d
}

// groupName is a group's usual name (crypto/tls's String gives "CurveP521").
func groupName(g tls.CurveID) string {
	if n, ok := strings.CutPrefix(g.String(), "CurveP"); ok {
		return "P-" + n
	}
	return g.String()
}

// unsafe names what is wrong with what the server chose, if anything.
func unsafe(cs tls.ConnectionState) string {
	var bad []string
	if cs.Version < tls.VersionTLS12 {
		bad = append(bad, tls.VersionName(cs.Version)+" is obsolete")
	}
	for _, s := range tls.InsecureCipherSuites() {
		if s.ID == cs.CipherSuite {
			bad = append(bad, "the suite is insecure")
		}
	}
	if n := tls.CipherSuiteName(cs.CipherSuite); strings.HasPrefix(n, "TLS_RSA_") {
		bad = append(bad, "RSA key exchange has no forward secrecy")
	}
	if len(bad) == 0 {
		return ""
	}
	return " (" + strings.Join(bad, "; ") + ")"
}

// errNegotiated ends a retry once the server's certificate arrives: by then version,
// suite and group are chosen, which is all a retry asks.
var errNegotiated = errors.New("negotiated")

// retry runs a handshake offering o up to the server's certificate and returns what the
// server chose.
func (r *run) retry(ctx context.Context, o offer) (tls.ConnectionState, error) {
	raw, err := r.o.Dial(ctx, "tcp", r.o.Target.Addr())
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer raw.Close()
	return r.handshakeToCertificate(ctx, raw, o)
}

// handshakeToCertificate runs a handshake offering o on raw up to the server's
// certificate and returns what the server chose.
func (r *run) handshakeToCertificate(ctx context.Context, raw net.Conn, o offer) (tls.ConnectionState, error) {
	var chosen tls.ConnectionState
	cfg := &tls.Config{
		ServerName:         r.sni,
		InsecureSkipVerify: true, //nolint:gosec // nothing is trusted: the handshake is cut at the certificate
		MinVersion:         cmp.Or(o.minimum, tls.VersionTLS12),
		CipherSuites:       o.suites,
		CurvePreferences:   o.groups,
		VerifyConnection: func(cs tls.ConnectionState) error {
			chosen = cs
			return errNegotiated
		},
	}
	if r.o.Version != 0 {
		cfg.MinVersion, cfg.MaxVersion = r.o.Version, r.o.Version
	}
	err := tls.Client(raw, cfg).HandshakeContext(ctx)
	if errors.Is(err, errNegotiated) {
		return chosen, nil
	}
	if err == nil {
		return tls.ConnectionState{}, errors.New("the handshake completed without a server certificate")
	}
	return tls.ConnectionState{}, err
}
