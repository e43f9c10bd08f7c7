// Package config owns the YAML schema of tlsgate (SPEC §3): plain data structs, a strict
// decoder, defaults applied in one place, and Validate, which reports every problem at once
// with its path and line. It imports no other internal package and builds no runtime
// objects: certstore, tlsconf and server turn a validated Config into running state.
package config

import (
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole configuration file.
type Config struct {
	// Admin is the admin listener serving /healthz and /metrics.
	Admin Admin `yaml:"admin,omitempty" json:"admin"`
	// Certificates is the certificate store: server identities and CA bundles by id.
	Certificates []Certificate `yaml:"certificates,omitempty" json:"certificates,omitempty"`
	// TargetGroups are the backends listeners forward to.
	TargetGroups []TargetGroup `yaml:"target_groups,omitempty" json:"target_groups,omitempty"`
	// Listeners accept client connections.
	Listeners []Listener `yaml:"listeners,omitempty" json:"listeners,omitempty"`
	// Denylist refuses client certificates on every listener.
	Denylist Denylist `yaml:"denylist,omitempty" json:"denylist"`
	// Watch sets how often referenced files are checked for changes. Default 2s; 0 keeps
	// the default, a negative value turns watching off (SIGHUP still reloads).
	Watch Duration `yaml:"watch_interval,omitempty" json:"watch_interval,omitempty"`
	// SessionTickets sets how session-ticket keys rotate.
	SessionTickets SessionTickets `yaml:"session_tickets,omitempty" json:"session_tickets"`
	// Log sets the level, format, file and access lines of tlsgate's log (log.go).
	Log Log `yaml:"log,omitempty" json:"log"`
	// MaxHeaderMemory is the process-wide budget of HTTP header bytes being read and
	// not yet parsed, over every listener and connection; past it a new header read is
	// refused and its connection closed. Default 33554432 (32 MiB).
	MaxHeaderMemory int64 `yaml:"max_header_memory,omitempty" json:"max_header_memory,omitempty"`
	// DrainTimeout bounds how long a shutdown (SIGTERM, the old process of an upgrade)
	// and a listener a reload removed wait for in-flight requests and relays before
	// closing what is left (nginx's worker_shutdown_timeout, HAProxy's hard-stop-after).
	// Default 30s; 1s to 1h. A reload applies it to the shutdowns after it.
	DrainTimeout Duration `yaml:"drain_timeout,omitempty" json:"drain_timeout,omitempty"`
	// Fleet makes this a node config: everything but admin comes from etcd.
	Fleet *Fleet `yaml:"fleet,omitempty" json:"fleet,omitempty"`

	// Include names further files (globs, relative to this file's directory) whose
	// certificates, target_groups and listeners are added to this file's.
	Include []string `yaml:"include,omitempty" json:"include,omitempty"`

	// Includes are the files Include matched, resolved; they are watched like the config.
	Includes []string `yaml:"-" json:"-"`
	// Dir is the directory of the config file; relative paths are resolved against it.
	Dir string `yaml:"-"`
	// File is the config file's path as given, used in problem reports.
	File string `yaml:"-"`
	// Revision is the fleet revision this config was stored as; 0 outside fleet mode.
	Revision int64 `yaml:"-" json:"-"`
	// Source, when set, reads the files the config references instead of the disk (a
	// fleet revision held in memory, decrypted from its cache). Use ReadFile.
	Source func(path string) ([]byte, error) `yaml:"-" json:"-"`

	lines index // path → line, for problems found after decoding
}

// SessionTickets sets the rotation of the session-ticket keys every TLS policy derives
// its own keys from.
type SessionTickets struct {
	// Rotation is how often a new key starts encrypting tickets; the previous key keeps
	// decrypting for one more period, so a ticket resumes for between one and two
	// periods. Default 24h; at least 1m, at most 168h (crypto/tls ends tickets at 7 days).
	Rotation Duration `yaml:"rotation,omitempty" json:"rotation,omitempty"`
}

// Admin configures the admin listener.
type Admin struct {
	// Listen is host:port. Empty disables the admin listener.
	Listen string `yaml:"listen,omitempty" json:"listen,omitempty"`
	// TokenFile holds the bearer token the management API (/api/) requires for
	// changes. Without it, ssl or a unix socket listen address, the API is read-only.
	TokenFile string `yaml:"token_file,omitempty" json:"token_file,omitempty"`
	// Pprof serves Go's profiler under /debug/pprof/ on the admin listener, behind the
	// same authentication as the API. Default false.
	Pprof bool `yaml:"pprof,omitempty" json:"pprof,omitempty"`
	// SSL serves the admin listener over HTTPS requiring a client certificate (mode
	// must be mutual).
	SSL *SSL `yaml:"ssl,omitempty" json:"ssl,omitempty"`
}

// Denylist refuses client certificates at once, without a CRL: by serial (hex, as
// openssl prints it) or by SHA-256 of the SubjectPublicKeyInfo (hex). Reason: denied.
type Denylist struct {
	Serials    []string `yaml:"serials,omitempty" json:"serials,omitempty"`
	SPKISHA256 []string `yaml:"spki_sha256,omitempty" json:"spki_sha256,omitempty"`
}

// Certificate is one entry of the certificate store: either a server certificate (Cert,
// with Key unless Cert is PKCS#12) or a CA bundle (CA, with optional CRLs).
type Certificate struct {
	ID string `yaml:"id,omitempty" json:"id,omitempty"`
	// Cert is a PEM file (leaf first, then intermediates), a DER file or a PKCS#12 file.
	Cert string `yaml:"cert,omitempty" json:"cert,omitempty"`
	// Key is the private key (PKCS#1, PKCS#8 or SEC1, PEM or DER); omitted for PKCS#12.
	Key string `yaml:"key,omitempty" json:"key,omitempty"`
	// OCSPStaple fetches an OCSP response for the certificate from the responder it
	// names (the issuer must follow the leaf in the file) and staples it to handshakes,
	// refreshed at half of its validity. Default false.
	OCSPStaple bool `yaml:"ocsp_staple,omitempty" json:"ocsp_staple,omitempty"`
	// Password decrypts a PKCS#12 file. Prefer PasswordFile (or ${VAR}): a password in
	// the config is readable by whoever reads the config.
	Password string `yaml:"password,omitempty" json:"password,omitempty"`
	// PasswordFile is a file holding the PKCS#12 password (one trailing newline is
	// dropped); relative to the config file.
	PasswordFile string `yaml:"password_file,omitempty" json:"password_file,omitempty"`
	// CA is a file of one or more CA certificates that client certificates must chain to.
	CA string `yaml:"ca,omitempty" json:"ca,omitempty"`
	// CRL lists PEM or DER CRL files issued by certificates of the CA bundle.
	CRL []string `yaml:"crl,omitempty" json:"crl,omitempty"`
	// CRLURLs are fetched over HTTP(S), checked against the bundle, cached beside the
	// config, and refreshed; a failed fetch keeps the last good CRL.
	CRLURLs []string `yaml:"crl_urls,omitempty" json:"crl_urls,omitempty"`
	// CRLFetchCDP also fetches the CRL distribution points named by the bundle's
	// certificates (revocation of intermediates).
	CRLFetchCDP bool `yaml:"crl_fetch_cdp,omitempty" json:"crl_fetch_cdp,omitempty"`
	// CRLRefresh is how often fetched CRLs are refreshed; they are also refreshed once
	// half of their validity has passed. Default 1h.
	CRLRefresh Duration `yaml:"crl_refresh,omitempty" json:"crl_refresh,omitempty"`
	// OCSP, when true, asks the OCSP responder each client certificate names (answers
	// cached until their next update). Default false.
	OCSP bool `yaml:"ocsp,omitempty" json:"ocsp,omitempty"`
	// OCSPPolicy decides what an unreachable or unknowing responder means.
	// Default fail_closed.
	OCSPPolicy CRLPolicy `yaml:"ocsp_policy,omitempty" json:"ocsp_policy,omitempty"`
	// CRLPolicy decides what a CRL past its NextUpdate does. Default fail_closed.
	CRLPolicy CRLPolicy `yaml:"crl_policy,omitempty" json:"crl_policy,omitempty"`
}

// IsCA reports whether the entry is a CA bundle rather than a server certificate.
func (c *Certificate) IsCA() bool { return c.CA != "" }

// CRLPolicy is what happens when a CRL is stale or missing.
type CRLPolicy string

// CRL policies.
const (
	CRLFailClosed CRLPolicy = "fail_closed"
	CRLFailOpen   CRLPolicy = "fail_open"
)

// Valid reports whether p is a known policy.
func (p CRLPolicy) Valid() bool { return p == CRLFailClosed || p == CRLFailOpen }

// TargetGroup is a set of backends and how to pick one.
type TargetGroup struct {
	ID string `yaml:"id,omitempty" json:"id,omitempty"`
	// Scheduler picks a target. Default wrr.
	Scheduler Scheduler `yaml:"scheduler,omitempty" json:"scheduler,omitempty"`
	// HealthCheck is accepted and validated; active checks arrive with the parity issue.
	HealthCheck *HealthCheck `yaml:"health_check,omitempty" json:"health_check,omitempty"`
	Targets     []Target     `yaml:"targets,omitempty" json:"targets,omitempty"`
	// TLS re-encrypts to the targets.
	TLS *BackendTLS `yaml:"tls,omitempty" json:"tls,omitempty"`
	// StickyCookie, on HTTP(S) listeners, keeps a client on one target with a cookie of
	// this name (inserted by tlsgate). TCP listeners keep clients with ip_hash instead.
	StickyCookie string `yaml:"sticky_cookie,omitempty" json:"sticky_cookie,omitempty"`
	// Protocol is what HTTP(S) listeners speak to the targets: http1 (default), h2c
	// (HTTP/2 in clear, prior knowledge) or h2 (HTTP/2 over TLS, ALPN h2; needs tls).
	// gRPC backends need h2c or h2.
	Protocol Upstream `yaml:"protocol,omitempty" json:"protocol,omitempty"`

	// The failure policy (resilience.go documents each default and why).

	// ConnectTimeout bounds connecting to a target, TLS handshake included. Default 5s.
	ConnectTimeout Duration `yaml:"connect_timeout,omitempty" json:"connect_timeout,omitempty"`
	// ResponseTimeout bounds the wait for a target's response header once the request
	// was sent. Default 60s.
	ResponseTimeout Duration `yaml:"response_timeout,omitempty" json:"response_timeout,omitempty"`
	// Retries is how many more targets a request or TCP connection tries when a
	// connect fails, or (HTTP/1.1, a request without a body) a reused connection closes
	// before any response byte. Default 2; 0 turns retries off.
	Retries *int `yaml:"retries,omitempty" json:"retries,omitempty"`
	// Outlier ejects targets that keep failing.
	Outlier *Outlier `yaml:"outlier,omitempty" json:"outlier,omitempty"`
	// PanicThreshold is a percentage: when fewer than this share of the targets is
	// available, requests go to all of them. Default 50; 0 turns panic mode off.
	PanicThreshold *int `yaml:"panic_threshold,omitempty" json:"panic_threshold,omitempty"`
	// MaxIdlePerTarget is how many idle connections to each target are kept for reuse
	// (h2c/h2: connections without a stream). Default 32; 0 keeps none.
	MaxIdlePerTarget *int `yaml:"max_idle_per_target,omitempty" json:"max_idle_per_target,omitempty"`
	// IdleTimeout closes a pooled connection to a target unused this long. Default 60s.
	IdleTimeout Duration `yaml:"idle_timeout,omitempty" json:"idle_timeout,omitempty"`
}

// Outlier is passive outlier ejection: a target that fails ConsecutiveFailures
// connects or response timeouts in a row gets no new work for BaseEjection, doubled
// each time it is ejected again, up to MaxEjection.
type Outlier struct {
	// ConsecutiveFailures ejects a target after this many connect failures or timeouts
	// in a row. Default 5.
	ConsecutiveFailures int `yaml:"consecutive_failures,omitempty" json:"consecutive_failures,omitempty"`
	// BaseEjection is the first ejection's length. Default 10s.
	BaseEjection Duration `yaml:"base_ejection,omitempty" json:"base_ejection,omitempty"`
	// MaxEjection caps an ejection's length. Default 300s.
	MaxEjection Duration `yaml:"max_ejection,omitempty" json:"max_ejection,omitempty"`
	// MaxEjectionPercent caps the share of a group's targets ejected at once; the last
	// available target is never ejected. Default 50.
	MaxEjectionPercent *int `yaml:"max_ejection_percent,omitempty" json:"max_ejection_percent,omitempty"`
}

// Upstream is the HTTP version a target group's targets are spoken to in.
type Upstream string

// Upstream protocols; "" means http1.
const (
	UpstreamHTTP1 Upstream = "http1"
	UpstreamH2C   Upstream = "h2c"
	UpstreamH2    Upstream = "h2"
)

// Valid reports whether u is a known protocol ("" included).
func (u Upstream) Valid() bool {
	return u == "" || u == UpstreamHTTP1 || u == UpstreamH2C || u == UpstreamH2
}

// HTTP2 reports whether the targets are spoken to in HTTP/2 (h2c or h2).
func (u Upstream) HTTP2() bool { return u == UpstreamH2C || u == UpstreamH2 }

// BackendTLS is how tlsgate connects to TLS backends.
type BackendTLS struct {
	// CACertificate is the id of a CA bundle the backends' certificates must chain to.
	// Required: a backend's identity is always verified.
	CACertificate string `yaml:"ca_certificate,omitempty" json:"ca_certificate,omitempty"`
	// ServerName is sent as SNI and checked against the backend certificate. Default:
	// the target's host.
	ServerName string `yaml:"server_name,omitempty" json:"server_name,omitempty"`
	// ClientCertificate is the id of a certificate tlsgate presents to backends that ask
	// for one (mTLS origination).
	ClientCertificate string `yaml:"client_certificate,omitempty" json:"client_certificate,omitempty"`
}

// Scheduler names a target selection policy.
type Scheduler string

// Schedulers.
const (
	SchedWRR       Scheduler = "wrr"
	SchedLeastConn Scheduler = "least_conn"
	SchedIPHash    Scheduler = "ip_hash"
)

// Valid reports whether s is a known scheduler.
func (s Scheduler) Valid() bool { return s == SchedWRR || s == SchedLeastConn || s == SchedIPHash }

// HealthCheck configures active health checks of a target group.
type HealthCheck struct {
	// Protocol is tcp (connect), http or https (GET Path), or grpc (the grpc.health.v1
	// Check of Service, over h2c, or over TLS when the group has tls). Default tcp.
	Protocol string `yaml:"protocol,omitempty" json:"protocol,omitempty"`
	// Service is the service name a grpc check asks about. Default "" (the server as a
	// whole).
	Service string `yaml:"service,omitempty" json:"service,omitempty"`
	// Host is the Host header of http(s) checks. Default: the target address.
	Host string `yaml:"host,omitempty" json:"host,omitempty"`
	// Path of http(s) checks. Default /.
	Path string `yaml:"path,omitempty" json:"path,omitempty"`
	// Expect lists accepted status codes. Default: 200–399.
	Expect []int `yaml:"expect,omitempty" json:"expect,omitempty"`
	// Interval between checks. Default 5s.
	Interval Duration `yaml:"interval,omitempty" json:"interval,omitempty"`
	// Timeout of one check. Default 2s, or the interval when that is shorter.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// HealthyThreshold: consecutive successes to mark a target healthy. Default 2.
	HealthyThreshold int `yaml:"healthy_threshold,omitempty" json:"healthy_threshold,omitempty"`
	// UnhealthyThreshold: consecutive failures to mark it unhealthy. Default 3.
	UnhealthyThreshold int `yaml:"unhealthy_threshold,omitempty" json:"unhealthy_threshold,omitempty"`
}

// Target is one backend address.
type Target struct {
	Address string `yaml:"address,omitempty" json:"address,omitempty"`
	// Weight is 0–100; 0 drains the target. Default 1.
	Weight *int `yaml:"weight,omitempty" json:"weight,omitempty"`
}

// Listener accepts connections on one address.
type Listener struct {
	ID string `yaml:"id,omitempty" json:"id,omitempty"`
	// Protocol is tcp, tcp_ssl, http or https.
	Protocol Protocol `yaml:"protocol,omitempty" json:"protocol,omitempty"`
	Listen   string   `yaml:"listen,omitempty" json:"listen,omitempty"`
	// SSL is required for tcp_ssl and https, forbidden otherwise.
	SSL         *SSL   `yaml:"ssl,omitempty" json:"ssl,omitempty"`
	TargetGroup string `yaml:"target_group,omitempty" json:"target_group,omitempty"`
	// ForwardClientCert is the identity dialect sent to backends. Default headers.
	ForwardClientCert Forward `yaml:"forward_client_cert,omitempty" json:"forward_client_cert,omitempty"`
	// HandshakeTimeout bounds the TLS handshake. Default 10s.
	HandshakeTimeout Duration `yaml:"handshake_timeout,omitempty" json:"handshake_timeout,omitempty"`
	// RedirectHTTPSPort, on an http listener, answers every request with a 308 redirect
	// to https on this port instead of proxying.
	RedirectHTTPSPort int `yaml:"redirect_https_port,omitempty" json:"redirect_https_port,omitempty"`
	// HeaderTimeout bounds reading an HTTP request's headers. Default 30s.
	HeaderTimeout Duration `yaml:"header_timeout,omitempty" json:"header_timeout,omitempty"`
	// IdleTimeout closes an idle HTTP keep-alive connection. Default 120s.
	IdleTimeout Duration `yaml:"idle_timeout,omitempty" json:"idle_timeout,omitempty"`
	// TCPIdleTimeout closes a tcp or tcp_ssl relay on which neither side sent anything
	// for this long, releasing its backend connection. Default 10m (nginx proxy_timeout).
	TCPIdleTimeout Duration `yaml:"tcp_idle_timeout,omitempty" json:"tcp_idle_timeout,omitempty"`
	// WriteTimeout closes an HTTP connection (an HTTP/2 stream: reset) whose client
	// accepted nothing of the response for this long, releasing its backend exchange.
	// Default 60s, as nginx's send_timeout.
	WriteTimeout Duration `yaml:"write_timeout,omitempty" json:"write_timeout,omitempty"`
	// MaxHeaderBytes bounds an HTTP request's header block, request line included
	// (431 past it). Default 65536, as nginx's large_client_header_buffers 4 × 8k allow.
	MaxHeaderBytes int `yaml:"max_header_bytes,omitempty" json:"max_header_bytes,omitempty"`
	// MaxHeaderFields bounds the number of header fields of a request (431). Default 100.
	MaxHeaderFields int `yaml:"max_header_fields,omitempty" json:"max_header_fields,omitempty"`
	// MaxHeaderFieldBytes bounds one header field (431) and the request line (414).
	// Default 8192, nginx's buffer size.
	MaxHeaderFieldBytes int `yaml:"max_header_field_bytes,omitempty" json:"max_header_field_bytes,omitempty"`
	// MaxConnections refuses (closes at once, with a log line) connections beyond this
	// many open ones. Default 0: no limit.
	MaxConnections int `yaml:"max_connections,omitempty" json:"max_connections,omitempty"`
	// ProxyProtocol sends a PROXY protocol header (v1, or v2 with SSL TLVs: client
	// certificate presented/verified, version, CN, cipher, certificate) to tcp and tcp_ssl
	// backends. Default none.
	ProxyProtocol string `yaml:"proxy_protocol,omitempty" json:"proxy_protocol,omitempty"`
	// AcceptProxyProtocol lists the addresses or CIDRs of trusted fronts (another load
	// balancer) whose connections must start with a PROXY v1/v2 header; the client
	// address is taken from it. Other sources are served as direct clients.
	AcceptProxyProtocol []string `yaml:"accept_proxy_protocol,omitempty" json:"accept_proxy_protocol,omitempty"`
	// Rules route HTTPS requests of the default policy by path prefix.
	Rules []Rule `yaml:"rules,omitempty" json:"rules,omitempty"`
	// Domains give names (exact or "*.example.com") their own certificates, ssl
	// settings, target group and rules. SNI picks the domain; on HTTPS the request's
	// Host must belong to a domain with the same ssl policy, else 421.
	Domains []Domain `yaml:"domains,omitempty" json:"domains,omitempty"`
}

// Domain is a set of names with their own policy on a listener.
type Domain struct {
	Names []string `yaml:"names,omitempty" json:"names,omitempty"`
	// SSL defaults to the listener's (then the domain shares the listener's policy).
	SSL *SSL `yaml:"ssl,omitempty" json:"ssl,omitempty"`
	// TargetGroup defaults to the listener's.
	TargetGroup string `yaml:"target_group,omitempty" json:"target_group,omitempty"`
	Rules       []Rule `yaml:"rules,omitempty" json:"rules,omitempty"`
}

// Rule routes requests whose path starts with Path; the longest prefix wins.
type Rule struct {
	Path        string `yaml:"path,omitempty" json:"path,omitempty"`
	TargetGroup string `yaml:"target_group,omitempty" json:"target_group,omitempty"`
	// Allow further restricts verified client identities for this path (403 otherwise).
	Allow *Allow `yaml:"allow,omitempty" json:"allow,omitempty"`
}

// Protocol is a listener protocol.
type Protocol string

// Listener protocols.
const (
	ProtoTCP    Protocol = "tcp"
	ProtoTCPSSL Protocol = "tcp_ssl"
	ProtoHTTP   Protocol = "http"
	ProtoHTTPS  Protocol = "https"
)

// Valid reports whether p is a known protocol.
func (p Protocol) Valid() bool {
	return p == ProtoTCP || p == ProtoTCPSSL || p == ProtoHTTP || p == ProtoHTTPS
}

// TLS reports whether the protocol terminates TLS.
func (p Protocol) TLS() bool { return p == ProtoTCPSSL || p == ProtoHTTPS }

// Forward is an identity forwarding dialect.
type Forward string

// Forwarding dialects (SPEC §4).
const (
	ForwardNone    Forward = "none"
	ForwardHeaders Forward = "headers"
	ForwardXFCC    Forward = "xfcc"
	ForwardRFC9440 Forward = "rfc9440"
)

// Valid reports whether f is a known dialect.
func (f Forward) Valid() bool {
	return f == ForwardNone || f == ForwardHeaders || f == ForwardXFCC || f == ForwardRFC9440
}

// SSL is the TLS side of a listener.
type SSL struct {
	// Mode is one_way, mutual or optional.
	Mode SSLMode `yaml:"mode,omitempty" json:"mode,omitempty"`
	// ServerCertificates are certificate ids; several are picked by SNI and key type.
	ServerCertificates []string `yaml:"server_certificates,omitempty" json:"server_certificates,omitempty"`
	// CACertificate is the id of the CA bundle client certificates must chain to.
	CACertificate string `yaml:"ca_certificate,omitempty" json:"ca_certificate,omitempty"`
	// Policy is a named TLS security policy. Default tls12-modern.
	Policy string `yaml:"policy,omitempty" json:"policy,omitempty"`
	// MinVersion and MaxVersion ("1.0", "1.1", "1.2", "1.3") override the policy's
	// versions; TLS 1.0 and 1.1 are offered only when MinVersion names them.
	MinVersion string `yaml:"min_version,omitempty" json:"min_version,omitempty"`
	MaxVersion string `yaml:"max_version,omitempty" json:"max_version,omitempty"`
	// Ciphers overrides the policy's TLS 1.2 cipher suites (Go names).
	Ciphers []string `yaml:"ciphers,omitempty" json:"ciphers,omitempty"`
	// Allow restricts verified client identities; empty allows every verified client.
	Allow *Allow `yaml:"allow,omitempty" json:"allow,omitempty"`
	// MaxClientChain is the most certificates a client may send. Default 5.
	MaxClientChain int `yaml:"max_client_chain,omitempty" json:"max_client_chain,omitempty"`
	// MaxClientCertBytes is the largest certificate a client may send. Default 16384.
	MaxClientCertBytes int `yaml:"max_client_cert_bytes,omitempty" json:"max_client_cert_bytes,omitempty"`
	// CANames is which CA names the CertificateRequest advertises: all (default, every
	// CA of the bundle, which clients use to pick a certificate) or none (an empty
	// list, for bundles too large to name; every refusal's alert is then bad_certificate).
	CANames CANames `yaml:"ca_names,omitempty" json:"ca_names,omitempty"`
	// Refusal is how a mutual https listener refuses a client certificate: handshake
	// (default: the handshake fails with a TLS alert) or http (the handshake completes
	// and every request gets a 403 page naming the reason; nothing reaches a backend).
	Refusal Refusal `yaml:"refusal,omitempty" json:"refusal,omitempty"`
	// ExpiryGrace accepts client certificates up to this long past their NotAfter
	// (fleets that cannot renew in time), flagged to backends, in the log and in a
	// metric; everything else is still checked. Default 0: none. At most 365 days.
	ExpiryGrace Duration `yaml:"expiry_grace,omitempty" json:"expiry_grace,omitempty"`
	// VerifyCache keeps this many verified client chains, so a client seen before skips
	// chain building on a full handshake; revocation, denylist and allow-list are still
	// checked every time. In mutual mode every refusal's alert is then bad_certificate.
	// Default 0: off. At most MaxVerifyCache.
	VerifyCache int `yaml:"verify_cache,omitempty" json:"verify_cache,omitempty"`
	// Audit checks every client certificate the listener lets in against another CA
	// bundle and allow-list as well, and reports what they would decide (log field
	// audit, metric) without acting on it: a dry run of a trust change.
	Audit *Audit `yaml:"audit,omitempty" json:"audit,omitempty"`
}

// MaxVerifyCache bounds ssl.verify_cache: a million chains is past any client fleet one
// listener serves, and each entry holds the client's parsed certificates (a few KiB).
const MaxVerifyCache = 1_000_000

// Audit is a CA bundle and allow-list to try on live traffic without enforcing them.
type Audit struct {
	// CACertificate is the id of the CA bundle (with its CRLs) to try.
	CACertificate string `yaml:"ca_certificate,omitempty" json:"ca_certificate,omitempty"`
	// Allow is the allow-list to try; empty allows every client the bundle verifies.
	Allow *Allow `yaml:"allow,omitempty" json:"allow,omitempty"`
}

// Refusal is how a mutual listener refuses a client certificate.
type Refusal string

// Refusals; "" means handshake.
const (
	RefuseHandshake Refusal = "handshake"
	RefuseHTTP      Refusal = "http"
)

// Valid reports whether r is a known value ("" included).
func (r Refusal) Valid() bool { return r == "" || r == RefuseHandshake || r == RefuseHTTP }

// CANames is which CA names a CertificateRequest advertises.
type CANames string

// CA name advertising; "" means all.
const (
	CANamesAll  CANames = "all"
	CANamesNone CANames = "none"
)

// Valid reports whether n is a known value ("" included).
func (n CANames) Valid() bool { return n == "" || n == CANamesAll || n == CANamesNone }

// SSLMode is the client authentication mode.
type SSLMode string

// Client authentication modes.
const (
	ModeOneWay   SSLMode = "one_way"
	ModeMutual   SSLMode = "mutual"
	ModeOptional SSLMode = "optional"
)

// Valid reports whether m is a known mode.
func (m SSLMode) Valid() bool { return m == ModeOneWay || m == ModeMutual || m == ModeOptional }

// Allow is an allow-list on verified client identities. A client passes when any listed
// value matches; an empty Allow lets every verified client pass.
type Allow struct {
	CN    []string `yaml:"cn,omitempty" json:"cn,omitempty"`
	OU    []string `yaml:"ou,omitempty" json:"ou,omitempty"`
	DNS   []string `yaml:"dns,omitempty" json:"dns,omitempty"`
	URI   []string `yaml:"uri,omitempty" json:"uri,omitempty"`
	Email []string `yaml:"email,omitempty" json:"email,omitempty"`
	// SPKISHA256 lists hex SHA-256 digests of the client's SubjectPublicKeyInfo.
	SPKISHA256 []string `yaml:"spki_sha256,omitempty" json:"spki_sha256,omitempty"`
}

// Empty reports whether the allow-list has no entries.
func (a *Allow) Empty() bool {
	return a == nil || len(a.CN)+len(a.OU)+len(a.DNS)+len(a.URI)+len(a.Email)+len(a.SPKISHA256) == 0
}

// Duration is a time.Duration written as "5s" in YAML.
type Duration time.Duration

// UnmarshalText parses a Go duration string (JSON, in the admin API).
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (write 500ms, 5s, 1m)", b)
	}
	*d = Duration(v)
	return nil
}

// UnmarshalYAML parses a Go duration string ("500ms", "5s", "1m"). It is a scalar, so
// the KnownFields pitfall of UnmarshalYAML on mappings does not apply.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return fmt.Errorf("line %d: %q is not a duration (write 500ms, 5s, 1m)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }
