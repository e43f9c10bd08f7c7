// Package tlsconf turns a listener's ssl settings into one *tls.Config: named security
// policies (versions and cipher suites), server certificates picked by SNI and key type,
// ClientAuth from the mode, VerifyConnection wired to clientauth, and session-ticket keys
// of its own. It does not accept connections (listener does) and does not load files
// (certstore does).
package tlsconf

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"tlsgate/internal/certstore"
	"tlsgate/internal/clientauth"
	"tlsgate/internal/config"
)

// Policy is a TLS security policy: the versions and TLS 1.2 cipher suites offered.
// TLS 1.3 suites are not configurable in crypto/tls; all three are secure.
type Policy struct {
	Name    string
	Min     uint16
	Max     uint16
	Ciphers []uint16 // TLS 1.2 only; nil means Go's secure defaults
}

var modern12 = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// Policies are the named policies. TLS 1.0 and 1.1 are in none of them: only an explicit
// min_version offers them.
var Policies = map[string]Policy{
	// tls13-only: TLS 1.3 and nothing else.
	"tls13-only": {Name: "tls13-only", Min: tls.VersionTLS13, Max: tls.VersionTLS13},
	// tls12-modern (default): TLS 1.2 with ECDHE + AEAD suites only, and TLS 1.3.
	"tls12-modern": {Name: "tls12-modern", Min: tls.VersionTLS12, Max: tls.VersionTLS13, Ciphers: modern12},
	// tls12-compat: also the CBC and RSA key-exchange suites Go still offers by default,
	// for old clients. Forward secrecy is lost with the RSA suites.
	"tls12-compat": {Name: "tls12-compat", Min: tls.VersionTLS12, Max: tls.VersionTLS13, Ciphers: compat12()},
}

func compat12() []uint16 {
	var ids []uint16
	for _, cs := range tls.CipherSuites() {
		ids = append(ids, cs.ID)
	}
	return ids
}

// PolicyOf resolves the named policy of s and applies explicit overrides.
func PolicyOf(s *config.SSL) Policy {
	p, ok := Policies[s.Policy]
	if !ok {
		p = Policies[config.DefaultPolicy]
		p.Name = "custom"
	}
	if v := version(s.MinVersion); v != 0 {
		p.Min = v
	}
	if v := version(s.MaxVersion); v != 0 {
		p.Max = v
	}
	if len(s.Ciphers) > 0 {
		p.Ciphers = nil
		for _, cs := range tls.CipherSuites() {
			for _, n := range s.Ciphers {
				if cs.Name == n {
					p.Ciphers = append(p.Ciphers, cs.ID)
				}
			}
		}
	}
	return p
}

// version is min_version's or max_version's protocol number, 0 when unset.
func version(s string) uint16 {
	if i := slices.Index(config.TLSVersions, s); i >= 0 {
		return config.TLSVersionIDs[i]
	}
	return 0
}

// Auth is a listener's TLS configuration and client-authentication decision.
type Auth struct {
	Config   *tls.Config
	Mode     config.SSLMode
	Policy   Policy
	Verifier *clientauth.Verifier // nil in one_way mode
	// Audit is the verifier ssl.audit tries on every client let in, without acting on
	// its answer; nil when there is none.
	Audit *clientauth.Verifier
	// RefusesOverHTTP: mutual with refusal: http. The handshake lets every client in,
	// as optional does; the HTTP layer answers each request of a client whose Verdict
	// is not verified with a refusal page, and forwards nothing.
	RefusesOverHTTP bool
	// selfVerified: crypto/tls does not verify the chain (ca_names: none, which leaves
	// it no CAs, expiry_grace, which it cannot apply, or verify_cache, which it does
	// not have); VerifyConnection runs the whole pipeline.
	selfVerified bool
}

// MaxCANames bounds the CA names a CertificateRequest carries, in bytes as crypto/tls
// encodes them (each distinguished name with a 2-byte length). The list has a 2-byte
// length and, in TLS 1.3, shares a 2-byte-length extensions block; Go clients also
// refuse handshake messages over 64 KiB. Past it, crypto/tls cannot write the message
// and every mutual handshake fails (teleport#3872, at ~500 CAs).
const MaxCANames = 65000

// CheckCANames returns an error when the names of ca's certificates do not fit in a
// CertificateRequest.
func CheckCANames(ca *certstore.CA) error {
	n, seen := 0, map[string]bool{}
	for _, c := range ca.Certs {
		if !seen[string(c.Raw)] { // the pool keeps one of identical certificates
			seen[string(c.Raw)] = true
			n += 2 + len(c.RawSubject)
		}
	}
	if n > MaxCANames {
		return fmt.Errorf("the names of the %d CAs of bundle %q take %d bytes, more than the %d a TLS CertificateRequest can carry, so every handshake would fail; split the bundle per domain, or set ca_names: none", len(seen), ca.ID, n, MaxCANames)
	}
	return nil
}

// It fails, rather than falling back to one-way, when a mutual or optional listener's CA
// bundle is missing: a security setting that fails to load never silently downgrades.
// Env is what every listener's Auth shares: the clock, ALPN protocols and the denylist,
// and where session-ticket keys come from.
type Env struct {
	ALPN []string
	Now  func() time.Time
	Deny func(*x509.Certificate) bool
	// Scope names the listener and domain the Auth serves; it is part of the ticket-key
	// identity, so tickets never cross listeners or domains.
	Scope string
	// Tickets gives cfg the session-ticket keys of an identity (scope plus everything
	// that decides who is let in) and keeps them current as they rotate
	// (ticketkeys.Ring.Attach); bundle is the policy's CA certificates (DER; nil for
	// one-way), which tickets then carry as references; nil draws one fresh random key
	// (check).
	Tickets func(cfg *tls.Config, identity string, bundle [][]byte)
	// HTTPRefusal: the caller answers every request and refuses unverified clients
	// (https listeners), so refusal: http may be served.
	HTTPRefusal bool
}

// New builds the Auth of one listener from its ssl settings and the certificate store.
func New(s *config.SSL, store *certstore.Store, env Env) (*Auth, error) {
	alpn, now := env.ALPN, env.Now
	a := &Auth{Mode: s.Mode, Policy: PolicyOf(s), RefusesOverHTTP: s.Mode == config.ModeMutual && s.Refusal == config.RefuseHTTP}
	if a.RefusesOverHTTP && !env.HTTPRefusal {
		// A caller that does not answer requests itself would serve the clients the
		// handshake let in: mutual would become one-way.
		return nil, fmt.Errorf("refusal: http is not enforced here (https listeners only)")
	}
	cfg := &tls.Config{
		MinVersion:   a.Policy.Min,
		MaxVersion:   a.Policy.Max,
		CipherSuites: a.Policy.Ciphers,
		NextProtos:   alpn,
		Time:         now,
		// Full-size records from the first byte, as nginx (ssl_buffer_size 16k) and
		// HAProxy (tune.ssl.maxrecord 0) send them: crypto/tls would cap a connection's
		// first record at 1,186 bytes, so a first answer of 1.2-16 KB left in two
		// records and two write(2) calls (bench/README.md, "Handshakes, third round").
		DynamicRecordSizingDisabled: true,
	}
	for _, id := range s.ServerCertificates {
		sc := store.Servers[id]
		if sc == nil {
			return nil, fmt.Errorf("server certificate %q is not loaded", id)
		}
		cfg.Certificates = append(cfg.Certificates, sc.Cert)
	}
	if s.Mode != config.ModeOneWay {
		ca := store.CAs[s.CACertificate]
		if ca == nil {
			return nil, fmt.Errorf("CA bundle %q is not loaded; refusing to serve %s mode without it", s.CACertificate, s.Mode)
		}
		a.Verifier = &clientauth.Verifier{Roots: ca.Pool, CRLs: ca.CRLs, Allow: AllowList(s.Allow), Now: now, Deny: env.Deny, OCSP: ca.OCSP,
			ExpiryGrace: time.Duration(s.ExpiryGrace)}
		if s.VerifyCache > 0 {
			// A new cache with every Auth: a reload, perhaps with another CA bundle,
			// starts empty, so no chain verified under old roots counts under new ones.
			a.Verifier.Cache = clientauth.NewCache(s.VerifyCache)
		}
		unnamed := s.CANames == config.CANamesNone
		a.selfVerified = unnamed || s.ExpiryGrace > 0 || s.VerifyCache > 0
		if !unnamed {
			if err := CheckCANames(ca); err != nil {
				return nil, err
			}
			cfg.ClientCAs = ca.Pool // crypto/tls names these in the CertificateRequest
		}
		cfg.VerifyPeerCertificate = limits(s.MaxClientChain, s.MaxClientCertBytes)
		if s.Audit != nil {
			audit := store.CAs[s.Audit.CACertificate]
			if audit == nil {
				return nil, fmt.Errorf("audit CA bundle %q is not loaded", s.Audit.CACertificate)
			}
			// No OCSP: the audit must not add a responder's round trip to handshakes.
			a.Audit = &clientauth.Verifier{Roots: audit.Pool, CRLs: audit.CRLs, Allow: AllowList(s.Audit.Allow), Now: now, Deny: env.Deny}
		}
	}
	switch {
	case a.RefusesOverHTTP:
		// As optional: the handshake never fails on the client certificate (limits
		// aside); Verdict runs the whole pipeline after it.
		cfg.ClientAuth = tls.RequestClientCert
	case s.Mode == config.ModeMutual && a.selfVerified:
		// crypto/tls only requires a certificate (it still names ClientCAs, if any);
		// VerifyConnection runs the whole pipeline (through the verify_cache, if any),
		// on full and resumed handshakes alike, and every refusal's alert is
		// bad_certificate.
		cfg.ClientAuth = tls.RequireAnyClientCert
		cfg.VerifyConnection = a.verifySelf
	case s.Mode == config.ModeMutual:
		// crypto/tls verifies chain, validity and EKU so it sends the precise alerts
		// (unknown_ca, certificate_expired); VerifyConnection adds CA-as-leaf, CRL and
		// allow-list. VerifyConnection runs on resumed sessions too, unlike
		// VerifyPeerCertificate, so a ticket cannot outlive a revocation.
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.VerifyConnection = a.verifyMutual
	case s.Mode == config.ModeOptional:
		// The handshake never fails on the client certificate; the listener runs the
		// whole pipeline after it and forwards the verdict (X-Client-Verify).
		cfg.ClientAuth = tls.RequestClientCert
	default:
		cfg.ClientAuth = tls.NoClientCert
	}
	// Session tickets are encrypted with keys of this policy alone, so a ticket issued
	// under one listener or policy never resumes under another (nginx CVE-2025-23419,
	// Go CVE-2025-68121). A reload that changes nothing about who is let in (say, a new
	// CRL) keeps the keys, so clients keep resuming; VerifyConnection still re-checks
	// CRL, denylist and allow-list on every resumption. The keys rotate (ticketkeys).
	if env.Tickets != nil {
		env.Tickets(cfg, env.Scope+"\x00"+ticketIdentity(s, a.Policy, store), ticketBundle(s, store))
	} else {
		var key [32]byte
		rand.Read(key[:]) // never fails (Go 1.24+ crashes instead)
		cfg.SetSessionTicketKeys([][32]byte{key})
	}
	a.Config = cfg
	return a, nil
}

// limits refuses client chains longer or certificates larger than configured (S11:
// trust material used to exhaust a server). In optional mode it runs before the
// pipeline, so an oversized chain is never verified.
func limits(maxChain, maxBytes int) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) > maxChain {
			return &clientauth.Error{Reason: clientauth.TooLarge, Err: fmt.Errorf("%d certificates sent, at most %d accepted", len(raw), maxChain)}
		}
		for _, c := range raw {
			if len(c) > maxBytes {
				return &clientauth.Error{Reason: clientauth.TooLarge, Err: fmt.Errorf("a %d-byte certificate sent, at most %d accepted", len(c), maxBytes)}
			}
		}
		return nil
	}
}

// ticketIdentity is everything about an ssl block that decides which clients are let
// in: mode, versions and suites, the CA bundle's certificates, allow-list and limits.
// Server certificates and CRLs are not part of it.
func ticketIdentity(s *config.SSL, p Policy, store *certstore.Store) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s|%d|%d|%v|%d|%d|%s|%s|%s|", s.Mode, p.Min, p.Max, p.Ciphers, s.MaxClientChain, s.MaxClientCertBytes, s.CANames, s.Refusal, time.Duration(s.ExpiryGrace))
	if ca := store.CAs[s.CACertificate]; ca != nil && s.Mode != config.ModeOneWay {
		for _, c := range ca.Certs {
			h.Write(c.Raw)
		}
	}
	if a := s.Allow; a != nil {
		fmt.Fprintf(h, "|%q|%q|%q|%q|%q|%q", a.CN, a.OU, a.DNS, a.URI, a.Email, a.SPKISHA256)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ticketBundle is the DER of the certificates ticketIdentity binds (the CA bundle of a
// mutual or optional policy, intermediates included), for Tickets to elide.
func ticketBundle(s *config.SSL, store *certstore.Store) [][]byte {
	ca := store.CAs[s.CACertificate]
	if ca == nil || s.Mode == config.ModeOneWay {
		return nil
	}
	ders := make([][]byte, len(ca.Certs))
	for i, c := range ca.Certs {
		ders[i] = c.Raw
	}
	return ders
}

func (a *Auth) verifyMutual(cs tls.ConnectionState) error {
	if len(cs.VerifiedChains) == 0 {
		// Not reachable with RequireAndVerifyClientCert; refuse rather than trust.
		return &clientauth.Error{Reason: clientauth.NoClientCert}
	}
	return a.Verifier.CheckVerified(cs.VerifiedChains[0])
}

// verifySelf runs the whole pipeline when crypto/tls verified nothing (selfVerified).
func (a *Auth) verifySelf(cs tls.ConnectionState) error {
	_, err := a.Verifier.Verify(cs.PeerCertificates)
	return err
}

// Verdict is the client-authentication outcome of a completed handshake.
func (a *Auth) Verdict(cs *tls.ConnectionState) clientauth.Verdict {
	var v clientauth.Verdict
	if len(cs.PeerCertificates) > 0 {
		v.Presented = cs.PeerCertificates[0]
	}
	switch {
	case a.Mode == config.ModeMutual && !a.selfVerified && !a.RefusesOverHTTP:
		// crypto/tls built and checked the chain; VerifyConnection checked the rest.
		if len(cs.VerifiedChains) > 0 {
			v.Chain = cs.VerifiedChains[0]
		}
	case a.Mode != config.ModeOneWay:
		// Optional, refusal: http, or a mutual listener that verifies itself (whose
		// chain from VerifyConnection was not kept, but for verify_cache): the whole
		// pipeline runs here.
		if v.Presented == nil {
			v.Reason = clientauth.NoClientCert
			return v
		}
		if a.Mode == config.ModeMutual && !a.RefusesOverHTTP {
			// With verify_cache, the chain this handshake's VerifyConnection verified
			// is remembered: taken without hashing or checking it again.
			if chain := a.Verifier.Passed(cs.PeerCertificates); chain != nil {
				v.Chain = chain
				break
			}
		}
		chain, err := a.Verifier.Verify(cs.PeerCertificates)
		v.Reason = clientauth.ReasonOf(err)
		if err == nil {
			v.Chain = chain
		}
	}
	v.Grace = v.Chain != nil && a.Verifier.InGrace(v.Chain[0])
	if a.Audit != nil && v.Presented != nil { // every connection here completed its handshake
		_, err := a.Audit.Verify(cs.PeerCertificates)
		v.Audit = clientauth.ReasonOf(err).Label()
	}
	return v
}

// Backend is the client config for re-encrypting to a target group's backends: their
// certificates are verified against the CA bundle (and ServerName when set, else the
// target's host), and a client certificate is presented when configured.
func Backend(b *config.BackendTLS, store *certstore.Store, now func() time.Time) (*tls.Config, error) {
	ca := store.CAs[b.CACertificate]
	if ca == nil {
		return nil, fmt.Errorf("CA bundle %q is not loaded", b.CACertificate)
	}
	cfg := &tls.Config{RootCAs: ca.Pool, ServerName: b.ServerName, MinVersion: tls.VersionTLS12, Time: now}
	if b.ClientCertificate != "" {
		sc := store.Servers[b.ClientCertificate]
		if sc == nil {
			return nil, fmt.Errorf("client certificate %q is not loaded", b.ClientCertificate)
		}
		cfg.Certificates = []tls.Certificate{sc.Cert}
	}
	return cfg, nil
}

// AllowList converts a config allow-list; nil or empty gives nil (allow all).
func AllowList(a *config.Allow) *clientauth.AllowList {
	if a.Empty() {
		return nil
	}
	pins := make([]string, len(a.SPKISHA256))
	for i, p := range a.SPKISHA256 {
		pins[i] = strings.ToLower(p)
	}
	return &clientauth.AllowList{CN: a.CN, OU: a.OU, DNS: a.DNS, URI: a.URI, Email: a.Email, SPKISHA256: pins}
}
