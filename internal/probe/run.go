package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"tlsgate/internal/clientauth"
)

// groups are the key-exchange groups probe offers, in order.
var groups = []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256, tls.CurveP384}

// run is one probe in progress.
type run struct {
	o      Options
	trace  *Trace
	n      int
	sni    string
	asked  *tls.CertificateRequestInfo // the server's CertificateRequest, if any
	sent   bool                        // a client certificate was sent
	failed *Diagnosis                  // set by our own server-chain checks
	chain  bool                        // the server's certificate arrived
	staple []byte                      // the server's stapled OCSP response
}

func (r *run) emit(s Step) {
	r.n++
	s.N = r.n
	if r.trace != nil && r.trace.Step != nil {
		r.trace.Step(s)
	}
}

func (r *run) now() time.Time {
	if r.o.Now != nil {
		return r.o.Now()
	}
	return time.Now()
}

// Run probes o.Target and reports each step to trace.
func Run(ctx context.Context, o Options, trace *Trace) Result {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Dial == nil {
		o.Dial = (&net.Dialer{}).DialContext
	}
	r := &run{o: o, trace: trace, sni: o.ServerName}
	if r.sni == "" && net.ParseIP(o.Target.Host) == nil {
		r.sni = o.Target.Host
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	start := time.Now()
	raw, err := o.Dial(ctx, "tcp", o.Target.Addr())
	if err != nil {
		r.emit(Step{Kind: "connect", Title: "TCP connect to " + o.Target.Addr(), Status: Fail, Lines: []string{err.Error()}})
		return r.conclude(err)
	}
	defer raw.Close()
	r.emit(Step{Kind: "connect", Title: "TCP connect to " + o.Target.Addr(), Status: Pass,
		Lines: []string{fmt.Sprintf("connected from %s in %s", raw.LocalAddr(), time.Since(start).Round(time.Millisecond))}})
	cfg := r.config()
	r.emit(r.clientHello(cfg))
	c := tls.Client(raw, cfg)
	err = c.HandshakeContext(ctx)
	if err == nil && r.asked == nil {
		r.emit(Step{Kind: "certificate_request", Title: "CertificateRequest: none", Status: Info,
			Lines: []string{"the server did not ask for a client certificate: one-way authentication"}})
	}
	if err != nil {
		r.emit(Step{Kind: "handshake", Title: "Handshake failed", Status: Fail, Lines: []string{err.Error()}})
		if d := r.refinement(ctx, err); d != nil {
			r.failed = d
		}
		return r.conclude(err)
	}
	// Under TLS 1.3 the server judges the client certificate after the client has
	// finished its handshake; a rejection only shows on the first read.
	_ = c.SetDeadline(time.Now().Add(o.Timeout))
	if o.Target.HTTPS {
		err = r.http(c)
	} else {
		err = r.readVerdict(c)
	}
	return r.conclude(err)
}

func (r *run) config() *tls.Config {
	cfg := &tls.Config{
		ServerName: r.sni,
		// Verification is done by serverChain so that every check is recorded, not
		// only the first failure; it fails the handshake the same way.
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
		VerifyConnection:   r.serverChain,
		MinVersion:         tls.VersionTLS12,
		CurvePreferences:   groups,
		GetClientCertificate: func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			r.asked = cri
			r.emit(r.certificateRequest(cri))
			if r.o.ClientCert == nil {
				r.emit(Step{Kind: "client_certificate", Title: "Client certificate: none sent", Status: Warn,
					Lines: []string{"no --cert/--key or --p12 given: a server that requires one will refuse the handshake"}})
				return &tls.Certificate{}, nil
			}
			r.sent = true
			r.emit(r.clientCertificate(cri))
			return r.o.ClientCert, nil
		},
	}
	if r.o.Version != 0 {
		cfg.MinVersion, cfg.MaxVersion = r.o.Version, r.o.Version
	}
	if r.o.Target.HTTPS {
		cfg.NextProtos = []string{"http/1.1"}
	}
	return cfg
}

func (r *run) clientHello(cfg *tls.Config) Step {
	versions := "TLS 1.3, TLS 1.2"
	if r.o.Version != 0 {
		versions = tls.VersionName(r.o.Version)
	}
	sni := r.sni
	if sni == "" {
		sni = "(none: the target is an IP address; use --servername)"
	}
	var gs []string
	for _, g := range groups {
		gs = append(gs, groupName(g))
	}
	alpn := "(none)"
	if len(cfg.NextProtos) > 0 {
		alpn = strings.Join(cfg.NextProtos, ", ")
	}
	return Step{Kind: "client_hello", Title: "ClientHello offered", Status: Info, Lines: []string{
		"versions: " + versions, "SNI: " + sni, "ALPN: " + alpn, "groups: " + strings.Join(gs, ", "),
	}}
}

func names(raw [][]byte) []string {
	var out []string
	for _, n := range raw {
		var rdn pkix.RDNSequence
		if _, err := asn1.Unmarshal(n, &rdn); err != nil {
			out = append(out, fmt.Sprintf("(unparsable name, %d bytes)", len(n)))
			continue
		}
		var name pkix.Name
		name.FillFromRDNSequence(&rdn)
		out = append(out, name.String())
	}
	return out
}

func (r *run) certificateRequest(cri *tls.CertificateRequestInfo) Step {
	s := Step{Kind: "certificate_request", Title: "CertificateRequest received: the server asks for a client certificate (mutual or optional authentication)", Status: Info}
	cas := names(cri.AcceptableCAs)
	if len(cas) == 0 {
		s.Lines = append(s.Lines, "acceptable CAs: (none listed: any issuer may be tried)")
	}
	for _, ca := range cas {
		s.Lines = append(s.Lines, "acceptable CA: "+ca)
	}
	var ss []string
	for _, sc := range cri.SignatureSchemes {
		ss = append(ss, sc.String())
	}
	s.Lines = append(s.Lines, "signature schemes: "+strings.Join(ss, ", "))
	return s
}

func (r *run) clientCertificate(cri *tls.CertificateRequestInfo) Step {
	cc := r.o.ClientCert
	leaf := cc.Leaf
	if leaf == nil && len(cc.Certificate) > 0 {
		leaf, _ = x509.ParseCertificate(cc.Certificate[0])
	}
	s := Step{Kind: "client_certificate", Title: "Client certificate sent", Status: Pass}
	if leaf != nil {
		s.Title = "Client certificate sent: " + leaf.Subject.String()
		s.Lines = append(s.Lines, fmt.Sprintf("issuer: %s; %d certificate(s) in the chain sent", leaf.Issuer, len(cc.Certificate)))
	}
	if err := cri.SupportsCertificate(cc); err != nil {
		s.Status = Warn
		s.Checks = append(s.Checks, Check{Name: "issuer among the acceptable CAs", Status: Fail, Detail: err.Error()})
	} else {
		s.Checks = append(s.Checks, Check{Name: "issuer among the acceptable CAs", Status: Pass, Detail: "the chain sent reaches an acceptable CA"})
	}
	return s
}

// readVerdict waits briefly for a TCP SSL server's reaction after the handshake: an
// alert means rejection; silence means the server accepted and waits for data.
func (r *run) readVerdict(c *tls.Conn) error {
	wait := min(r.o.Timeout, time.Second)
	_ = c.SetReadDeadline(time.Now().Add(wait))
	_, err := c.Read(make([]byte, 1))
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		r.emit(Step{Kind: "server_verdict", Title: "Server verdict: accepted", Status: Pass,
			Lines: []string{fmt.Sprintf("no alert within %s after the handshake: the server accepted the connection and waits for data", wait)}})
		return nil
	}
	if err == nil {
		r.emit(Step{Kind: "server_verdict", Title: "Server verdict: accepted", Status: Pass, Lines: []string{"the server sent data"}})
		return nil
	}
	r.emit(Step{Kind: "server_verdict", Title: "Server verdict: rejected after the handshake", Status: Fail, Lines: []string{err.Error()}})
	return err
}

func (r *run) http(c *tls.Conn) error {
	path := r.o.Target.Path
	if path == "" {
		path = "/"
	}
	host := r.sni
	if host == "" {
		host = r.o.Target.Host
	}
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: tlsgate-probe\r\nConnection: close\r\n\r\n", path, host)
	if _, err := c.Write([]byte(req)); err != nil {
		r.emit(Step{Kind: "server_verdict", Title: "Server verdict: rejected", Status: Fail, Lines: []string{err.Error()}})
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		r.emit(Step{Kind: "server_verdict", Title: "Server verdict: rejected after the handshake", Status: Fail, Lines: []string{err.Error()}})
		return err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if hr := httpRefusal(resp.StatusCode, body); hr != nil {
		r.emit(Step{Kind: "server_verdict", Title: "Server verdict: refused in HTTP after the handshake", Status: Fail, Lines: []string{hr.Error()}})
		r.emit(Step{Kind: "http", Title: "HTTP status: " + resp.Status, Status: Fail})
		return hr
	}
	r.emit(Step{Kind: "server_verdict", Title: "Server verdict: accepted", Status: Pass})
	st := Pass
	if resp.StatusCode >= 400 {
		st = Warn
	}
	var lines []string
	if resp.StatusCode == http.StatusMisdirectedRequest {
		// user-asks 2.5 item 7: SNI and Host must lead to the same site and TLS policy.
		if r.sni == "" {
			lines = append(lines, fmt.Sprintf("no SNI was sent (the target is an IP address), and the TLS policy the server chose without one does not serve Host %q: give --servername with the name the site is served under", host))
		} else {
			lines = append(lines, fmt.Sprintf("the server does not answer Host %q on a connection opened with SNI %q: it serves that name under another certificate or TLS policy (tlsgate: a domain with its own ssl, a reused connection)", host, r.sni))
		}
	}
	r.emit(Step{Kind: "http", Title: "HTTP status: " + resp.Status, Status: st, Lines: lines})
	return nil
}

// conclude turns the final error into the result and the last step.
func (r *run) conclude(err error) Result {
	if err == nil {
		res := Result{OK: true, Verdict: "the handshake succeeded"}
		if r.asked != nil && r.sent {
			res.Verdict += " with mutual authentication: the server accepted the client certificate"
		} else {
			res.Verdict += ": one-way authentication, the server's identity was verified"
		}
		r.emit(Step{Kind: "verdict", Title: "Verdict: " + res.Verdict, Status: Pass})
		return res
	}
	d := Diagnose(err)
	if r.failed != nil {
		d = *r.failed
	}
	hr, inHTTP := errors.AsType[*refusedOverHTTP](err)
	if inHTTP {
		d = hr.diagnosis()
	}
	res := Result{Verdict: "the handshake failed: " + d.Cause, Diagnosis: d}
	if r.sent && (clientSideAlert(d.Alert) || inHTTP) {
		said := alertReasons[d.Alert]
		if inHTTP {
			said = hr.reason
		}
		check := r.clientChecks(said)
		r.emit(check.step)
		if check.failed != "" {
			res.Verdict = "the server refused the client certificate: " + check.failed
			res.Reason = check.reason
		} else {
			res.Verdict = "the server refused the client certificate, but every check probe can make on the client side passes: the server's log holds the reason"
		}
	}
	// The server said why: that is the verdict, unless probe's checks found a more
	// precise cause of the same reason.
	if inHTTP && hr.reason != "" && res.Reason != string(hr.reason) {
		res.Verdict, res.Reason = "the server refused the client certificate: "+hr.cause, string(hr.reason)
	} else if inHTTP && !r.sent {
		res.Verdict = "the server refused in HTTP: " + d.Cause
	}
	if res.Reason == "" && !r.sent && r.asked != nil && (d.Alert == "certificate required" || d.Alert == "handshake failure") {
		// Asked for a certificate, sent none, refused: what tlsgate logs as no_client_cert
		// (certificate_required under TLS 1.3, handshake_failure under TLS 1.2).
		res.Reason = string(clientauth.NoClientCert)
	}
	if res.Reason != "" {
		// A named reason gets the reason table's fix: the words the console and the
		// refusal page (refusal: http) give for the same reason code.
		d.Fix = clientauth.Reason(res.Reason).Fix()
		res.Diagnosis.Fix = d.Fix
	}
	lines := []string{"cause: " + d.Cause, "fix: " + d.Fix}
	if d.Alert != "" {
		lines = append([]string{"TLS alert from the server: " + d.Alert}, lines...)
	}
	if res.Reason != "" {
		// SPEC §1: the precise reason code reaches probe, in its text as in --json.
		lines = append(lines, "reason code: "+res.Reason+" (as tlsgate's logs and metrics name it)")
	}
	r.emit(Step{Kind: "verdict", Title: "Verdict: " + res.Verdict, Status: Fail, Lines: lines})
	return res
}

// alertReasons are the reasons the alerts that name one mean (crypto/tls's texts).
var alertReasons = map[string]clientauth.Reason{
	"unknown certificate authority": clientauth.UnknownCA,
	"expired certificate":           clientauth.Expired,
	"revoked certificate":           clientauth.Revoked,
	"certificate required":          clientauth.NoClientCert,
}

// clientSideAlert reports whether an alert is about the client's certificate.
func clientSideAlert(alert string) bool {
	switch alert {
	case "bad certificate", "certificate required", "unknown certificate authority", "expired certificate",
		"revoked certificate", "unsupported certificate", "access denied", "error decrypting message", "handshake failure":
		return true
	}
	return false
}
