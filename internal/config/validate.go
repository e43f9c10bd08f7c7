package config

import (
	"cmp"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Defaults applied by SetDefaults.
const (
	DefaultWatch            = 2 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultPolicy           = "tls12-modern"
	DefaultWeight           = 1
	// DefaultTCPIdleTimeout is listeners[].tcp_idle_timeout, nginx's proxy_timeout.
	DefaultTCPIdleTimeout = 10 * time.Minute
	// DefaultTicketRotation is session_tickets.rotation: daily, as testssl asks.
	DefaultTicketRotation = 24 * time.Hour
	// DefaultDrainTimeout is drain_timeout: the systemd unit's TimeoutStopSec (40s)
	// leaves 10s beyond it.
	DefaultDrainTimeout = 30 * time.Second
)

// Policies lists the named TLS security policies. tlsconf owns what they mean; the names
// live here so Validate can check them without importing tlsconf.
var Policies = []string{"tls13-only", "tls12-modern", "tls12-compat"}

// TLSVersions are min_version's and max_version's values, oldest first. TLS 1.0 and 1.1
// are in no policy: a listener offers them only when its min_version names them.
var TLSVersions = []string{"1.0", "1.1", "1.2", "1.3"}

// TLSVersionIDs are TLSVersions' protocol numbers, in the same order.
var TLSVersionIDs = []uint16{tls.VersionTLS10, tls.VersionTLS11, tls.VersionTLS12, tls.VersionTLS13}

// legacyCiphers reports whether s's cipher suites include one that version (below
// TLS 1.2) can negotiate: an explicit list is searched; tls12-modern, the default, has
// only TLS 1.2 AEAD suites; tls12-compat and tls13-only leave Go's defaults, which hold
// ECDHE with AES-CBC.
func legacyCiphers(s *SSL, version uint16) bool {
	if len(s.Ciphers) == 0 {
		return s.Policy == "tls12-compat" || s.Policy == "tls13-only"
	}
	for _, cs := range tls.CipherSuites() {
		if slices.Contains(s.Ciphers, cs.Name) && slices.Contains(cs.SupportedVersions, version) {
			return true
		}
	}
	return false
}

// SetDefaults fills every field left empty with its documented default.
func (c *Config) SetDefaults() {
	c.Admin.SSL.setDefaults()
	c.Fleet.setDefaults()
	if c.Watch == 0 {
		c.Watch = Duration(DefaultWatch)
	}
	c.SessionTickets.Rotation = cmp.Or(c.SessionTickets.Rotation, Duration(DefaultTicketRotation))
	c.MaxHeaderMemory = cmp.Or(c.MaxHeaderMemory, 32<<20)
	c.DrainTimeout = cmp.Or(c.DrainTimeout, Duration(DefaultDrainTimeout))
	for i := range c.Certificates {
		if c.Certificates[i].IsCA() && c.Certificates[i].CRLPolicy == "" {
			c.Certificates[i].CRLPolicy = CRLFailClosed
		}
		if c.Certificates[i].IsCA() && c.Certificates[i].OCSP && c.Certificates[i].OCSPPolicy == "" {
			c.Certificates[i].OCSPPolicy = CRLFailClosed
		}
		if c.Certificates[i].IsCA() && c.Certificates[i].CRLRefresh == 0 {
			c.Certificates[i].CRLRefresh = Duration(time.Hour)
		}
	}
	for i := range c.TargetGroups {
		g := &c.TargetGroups[i]
		if g.Scheduler == "" {
			g.Scheduler = SchedWRR
		}
		g.SetPolicyDefaults()
		if g.Protocol == "" {
			g.Protocol = UpstreamHTTP1
		}
		if hc := g.HealthCheck; hc != nil {
			hc.Protocol = cmp.Or(hc.Protocol, "tcp")
			hc.Interval = cmp.Or(hc.Interval, Duration(5*time.Second))
			// 2 s, or the interval when that is shorter: HAProxy bounds a check by
			// inter when timeout check is unset, so interval: 1s alone is valid.
			hc.Timeout = cmp.Or(hc.Timeout, min(Duration(2*time.Second), hc.Interval))
			hc.HealthyThreshold = cmp.Or(hc.HealthyThreshold, 2)
			hc.UnhealthyThreshold = cmp.Or(hc.UnhealthyThreshold, 3)
		}
		for j := range g.Targets {
			if g.Targets[j].Weight == nil {
				w := DefaultWeight
				g.Targets[j].Weight = &w
			}
		}
	}
	for i := range c.Listeners {
		l := &c.Listeners[i]
		if l.ForwardClientCert == "" {
			l.ForwardClientCert = ForwardHeaders
		}
		if l.HandshakeTimeout == 0 {
			l.HandshakeTimeout = Duration(DefaultHandshakeTimeout)
		}
		l.HeaderTimeout = cmp.Or(l.HeaderTimeout, Duration(30*time.Second))
		l.IdleTimeout = cmp.Or(l.IdleTimeout, Duration(120*time.Second))
		l.TCPIdleTimeout = cmp.Or(l.TCPIdleTimeout, Duration(DefaultTCPIdleTimeout))
		l.WriteTimeout = cmp.Or(l.WriteTimeout, Duration(60*time.Second))
		l.MaxHeaderBytes = cmp.Or(l.MaxHeaderBytes, 64<<10)
		l.MaxHeaderFields = cmp.Or(l.MaxHeaderFields, 100)
		l.MaxHeaderFieldBytes = cmp.Or(l.MaxHeaderFieldBytes, 8<<10)
		for _, s := range append([]*SSL{l.SSL}, domainSSL(l)...) {
			s.setDefaults()
		}
	}
}

// setDefaults fills an ssl block's defaults; a nil block stays nil.
func (s *SSL) setDefaults() {
	if s == nil {
		return
	}
	if s.Policy == "" && s.MinVersion == "" && s.MaxVersion == "" && len(s.Ciphers) == 0 {
		s.Policy = DefaultPolicy
	}
	s.MaxClientChain = cmp.Or(s.MaxClientChain, 5)
	s.MaxClientCertBytes = cmp.Or(s.MaxClientCertBytes, 16384)
}

func domainSSL(l *Listener) []*SSL {
	var out []*SSL
	for i := range l.Domains {
		out = append(out, l.Domains[i].SSL)
	}
	return out
}

type validator struct{ ps []Problem }

func (v *validator) add(path, format string, args ...any) {
	v.ps = append(v.ps, Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// Validate returns every problem in c; it expects SetDefaults to have run.
func (c *Config) Validate() []Problem {
	v := &validator{}
	v.log(c.Log)
	if c.MaxHeaderMemory < 0 {
		v.add("max_header_memory", "must not be negative")
	}
	if d := time.Duration(c.DrainTimeout); d < time.Second || d > time.Hour {
		v.add("drain_timeout", "must be between 1s and 1h, not %v", d)
	}
	if sock, ok := strings.CutPrefix(c.Admin.Listen, "unix:"); ok {
		if !strings.HasPrefix(sock, "/") {
			v.add("admin.listen", "unix: needs an absolute socket path, such as unix:/run/tlsgate/admin.sock")
		}
		if c.Admin.SSL != nil {
			v.add("admin.ssl", "not used on a unix socket (the socket's mode 0600 authenticates)")
		}
	} else if c.Admin.Listen != "" {
		v.addr("admin.listen", c.Admin.Listen, true)
		if host, _, err := net.SplitHostPort(c.Admin.Listen); err == nil && c.Admin.TokenFile == "" && c.Admin.SSL == nil && !isLoopback(host) {
			v.add("admin.listen", "%s is not a loopback address: set admin.token_file or admin.ssl (mutual TLS) so the management API is not open to the network", c.Admin.Listen)
		}
	}
	if r := time.Duration(c.SessionTickets.Rotation); r != 0 && (r < time.Minute || r > 168*time.Hour) {
		v.add("session_tickets.rotation", "%v is outside 1m to 168h", r)
	}
	for i, s := range c.Denylist.Serials {
		if _, ok := new(big.Int).SetString(strings.ReplaceAll(s, ":", ""), 16); !ok {
			v.add(fmt.Sprintf("denylist.serials[%d]", i), "%q is not a hex serial", s)
		}
	}
	for i, h := range c.Denylist.SPKISHA256 {
		if b, err := hex.DecodeString(h); err != nil || len(b) != 32 {
			v.add(fmt.Sprintf("denylist.spki_sha256[%d]", i), "must be 64 hex digits")
		}
	}
	certs := map[string]*Certificate{}
	for i := range c.Certificates {
		ce := &c.Certificates[i]
		p := fmt.Sprintf("certificates[%d]", i)
		checkID(v, p, ce.ID, certs, ce)
		v.certificate(p, ce)
	}
	groups := map[string]*TargetGroup{}
	for i := range c.TargetGroups {
		g := &c.TargetGroups[i]
		p := fmt.Sprintf("target_groups[%d]", i)
		checkID(v, p, g.ID, groups, g)
		v.group(p, g, certs)
	}
	if s := c.Admin.SSL; s != nil {
		if s.Mode != ModeMutual {
			v.add("admin.ssl.mode", "must be mutual: the admin listener's TLS is for authenticating operators")
		}
		v.ssl("admin.ssl", s, adminCerts(c, certs))
		if s.Refusal == RefuseHTTP {
			v.add("admin.ssl.refusal", "http is for https listeners; the admin listener refuses in the handshake")
		}
	}
	listeners := map[string]*Listener{}
	addrs := map[string]string{}
	for i := range c.Listeners {
		l := &c.Listeners[i]
		p := fmt.Sprintf("listeners[%d]", i)
		checkID(v, p, l.ID, listeners, l)
		// Port 0 asks the kernel for a free port, so it never collides.
		if prev, ok := addrs[l.Listen]; ok && l.Listen != "" && !strings.HasSuffix(l.Listen, ":0") {
			v.add(p+".listen", "address %s is already used by listener %q", l.Listen, prev)
		}
		addrs[l.Listen] = l.ID
		v.listener(p, l, certs, groups)
	}
	v.fleet(c)
	return v.ps
}

func checkID[T any](v *validator, p, id string, seen map[string]T, x T) {
	switch {
	case id == "":
		v.add(p+".id", "required")
	case strings.ContainsFunc(id, func(r rune) bool { return r < ' ' || r == 0x7f }):
		// Ids reach log lines, metric labels, error pages and gRPC messages (S9).
		v.add(p+".id", "must not contain control characters, not %q", id)
	default:
		if _, dup := seen[id]; dup {
			v.add(p+".id", "duplicate id %q", id)
			return
		}
		seen[id] = x
	}
}

// addr checks a host:port. A listen address may use port 0 (the kernel picks one); a
// target's may not (nothing can be dialled there). Ports are numbers or service names
// (/etc/services), as net.Listen takes them.
func (v *validator) addr(p, a string, listen bool) {
	if a == "" {
		v.add(p, "required")
		return
	}
	_, port, err := net.SplitHostPort(a)
	if err != nil || port == "" {
		v.add(p, "%q is not host:port", a)
		return
	}
	n, err := net.LookupPort("tcp", port)
	switch {
	case err != nil:
		v.add(p, "%q: the port must be a number from 1 to 65535 (or 0 for any), not %q", a, port)
	case n == 0 && !listen:
		v.add(p, "%q: port 0 cannot be dialled; give the target's port", a)
	}
}

func (v *validator) certificate(p string, c *Certificate) {
	switch {
	case c.CA != "" && (c.Cert != "" || c.Key != ""):
		v.add(p, "set either ca (a CA bundle) or cert/key (a server certificate), not both")
	case c.CA == "" && c.Cert == "":
		v.add(p, "one of cert or ca is required")
	}
	switch {
	case c.Password != "" && c.PasswordFile != "":
		v.add(p+".password_file", "set password or password_file, not both")
	case (c.Password != "" || c.PasswordFile != "") && c.Cert == "":
		v.add(p+".password_file", "only for a PKCS#12 cert")
	}
	if c.CA == "" {
		if len(c.CRL)+len(c.CRLURLs) > 0 || c.CRLFetchCDP {
			v.add(p+".crl", "only allowed with ca")
		}
		if c.CRLPolicy != "" {
			v.add(p+".crl_policy", "only allowed with ca")
		}
		return
	}
	for i, u := range c.CRLURLs {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			v.add(fmt.Sprintf("%s.crl_urls[%d]", p, i), "%q is not an http(s) URL", u)
		}
	}
	if c.CRLRefresh < 0 {
		v.add(p+".crl_refresh", "must not be negative")
	}
	if c.OCSPPolicy != "" && !c.OCSPPolicy.Valid() {
		v.add(p+".ocsp_policy", "must be fail_closed or fail_open, not %q", c.OCSPPolicy)
	}
	if !c.CRLPolicy.Valid() {
		v.add(p+".crl_policy", "must be fail_closed or fail_open, not %q", c.CRLPolicy)
	}
}

func (v *validator) group(p string, g *TargetGroup, certs map[string]*Certificate) {
	if !g.Scheduler.Valid() {
		v.add(p+".scheduler", "must be wrr, least_conn or ip_hash, not %q", g.Scheduler)
	}
	if len(g.Targets) == 0 {
		v.add(p+".targets", "at least one target is required")
	}
	v.policy(p, g)
	if g.StickyCookie != "" && !validCookieName(g.StickyCookie) {
		v.add(p+".sticky_cookie", "%q is not a cookie name", g.StickyCookie)
	}
	switch {
	case !g.Protocol.Valid():
		v.add(p+".protocol", "must be http1, h2c or h2, not %q", g.Protocol)
	case g.Protocol == UpstreamH2 && g.TLS == nil:
		v.add(p+".protocol", "h2 is HTTP/2 over TLS: it needs tls (ca_certificate) to verify the targets; use h2c for HTTP/2 in clear")
	case g.Protocol == UpstreamH2C && g.TLS != nil:
		v.add(p+".protocol", "h2c is HTTP/2 in clear, but the group has tls: use h2")
	}
	if bt := g.TLS; bt != nil {
		tp := p + ".tls"
		if c := certs[bt.CACertificate]; c == nil || !c.IsCA() {
			v.add(tp+".ca_certificate", "must name a CA bundle (the backends' certificates are always verified)")
		}
		if c := certs[bt.ClientCertificate]; bt.ClientCertificate != "" && (c == nil || c.IsCA()) {
			v.add(tp+".client_certificate", "must name a certificate with a key, not %q", bt.ClientCertificate)
		}
	}
	if hc := g.HealthCheck; hc != nil {
		hp := p + ".health_check"
		if hc.Protocol != "tcp" && hc.Protocol != "http" && hc.Protocol != "https" && hc.Protocol != "grpc" {
			v.add(hp+".protocol", "must be tcp, http, https or grpc, not %q", hc.Protocol)
		}
		if hc.Service != "" && hc.Protocol != "grpc" {
			v.add(hp+".service", "is only for protocol grpc")
		}
		if hc.Path != "" && !strings.HasPrefix(hc.Path, "/") {
			v.add(hp+".path", "must start with /")
		}
		// Both go into each check's request line and Host header (S9: no CR, LF or NUL
		// reaches the wire from the config; Go's client would fail every check instead).
		for _, f := range [...]struct{ name, val string }{{".path", hc.Path}, {".host", hc.Host}} {
			if strings.ContainsFunc(f.val, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
				v.add(hp+f.name, "must not contain spaces or control characters, not %q", f.val)
			}
		}
		if hc.Interval <= 0 || hc.Timeout <= 0 || hc.Timeout > hc.Interval {
			v.add(hp, "interval and timeout must be positive, timeout at most interval")
		}
		if hc.HealthyThreshold < 1 || hc.UnhealthyThreshold < 1 {
			v.add(hp, "thresholds must be at least 1")
		}
	}
	for j, t := range g.Targets {
		tp := fmt.Sprintf("%s.targets[%d]", p, j)
		v.addr(tp+".address", t.Address, false)
		if t.Weight != nil && (*t.Weight < 0 || *t.Weight > 100) {
			v.add(tp+".weight", "must be 0–100, not %d", *t.Weight)
		}
	}
}

func (v *validator) listener(p string, l *Listener, certs map[string]*Certificate, groups map[string]*TargetGroup) {
	v.addr(p+".listen", l.Listen, true)
	if !l.Protocol.Valid() {
		v.add(p+".protocol", "must be tcp, tcp_ssl, http or https, not %q", l.Protocol)
	}
	if l.RedirectHTTPSPort != 0 {
		if l.Protocol != ProtoHTTP {
			v.add(p+".redirect_https_port", "only for http listeners")
		}
		if l.RedirectHTTPSPort < 1 || l.RedirectHTTPSPort > 65535 {
			v.add(p+".redirect_https_port", "must be a port number")
		}
	}
	if l.TargetGroup == "" && l.RedirectHTTPSPort == 0 {
		v.add(p+".target_group", "required")
	} else if l.TargetGroup != "" && groups[l.TargetGroup] == nil {
		v.add(p+".target_group", "unknown target group %q", l.TargetGroup)
	}
	if !l.ForwardClientCert.Valid() {
		v.add(p+".forward_client_cert", "must be none, headers, xfcc or rfc9440, not %q", l.ForwardClientCert)
	}
	if l.MaxConnections < 0 {
		v.add(p+".max_connections", "must not be negative")
	}
	if l.HeaderTimeout < 0 || l.IdleTimeout < 0 {
		v.add(p, "header_timeout and idle_timeout must not be negative")
	}
	if l.TCPIdleTimeout < 0 {
		v.add(p+".tcp_idle_timeout", "must not be negative")
	}
	if l.WriteTimeout < 0 {
		v.add(p+".write_timeout", "must not be negative")
	}
	if l.HandshakeTimeout < 0 {
		v.add(p+".handshake_timeout", "must not be negative")
	}
	for _, f := range []struct {
		name string
		n    int
	}{{"max_header_bytes", l.MaxHeaderBytes}, {"max_header_fields", l.MaxHeaderFields}, {"max_header_field_bytes", l.MaxHeaderFieldBytes}} {
		if f.n < 0 {
			v.add(p+"."+f.name, "must not be negative")
		}
	}
	if l.MaxHeaderFieldBytes > l.MaxHeaderBytes && l.MaxHeaderBytes > 0 {
		v.add(p+".max_header_field_bytes", "larger than max_header_bytes (%d), which bounds the whole block", l.MaxHeaderBytes)
	}
	switch {
	case l.Protocol.TLS() && l.SSL == nil:
		v.add(p+".ssl", "required for protocol %s", l.Protocol)
	case !l.Protocol.TLS() && l.SSL != nil && l.Protocol.Valid():
		v.add(p+".ssl", "not allowed for protocol %s (use tcp_ssl or https)", l.Protocol)
	case l.SSL != nil:
		v.ssl(p+".ssl", l.SSL, certs)
		v.refusal(p+".ssl", l, l.SSL)
	}
	v.rules(p+".rules", l, l.Rules, groups)
	switch l.ProxyProtocol {
	case "", "v1", "v2":
		if l.ProxyProtocol != "" && l.Protocol != ProtoTCP && l.Protocol != ProtoTCPSSL {
			v.add(p+".proxy_protocol", "only for tcp and tcp_ssl listeners (HTTP backends get X-Forwarded-For)")
		}
	default:
		v.add(p+".proxy_protocol", "must be v1 or v2, not %q", l.ProxyProtocol)
	}
	for i, a := range l.AcceptProxyProtocol {
		if _, err := ParsePrefix(a); err != nil {
			v.add(fmt.Sprintf("%s.accept_proxy_protocol[%d]", p, i), "%q is not an IP address or CIDR", a)
		}
	}
	names := map[string]bool{}
	for i, d := range l.Domains {
		dp := fmt.Sprintf("%s.domains[%d]", p, i)
		if !l.Protocol.TLS() {
			v.add(dp, "domains need a TLS listener (https or tcp_ssl): they are picked by SNI")
			continue
		}
		if len(d.Names) == 0 {
			v.add(dp+".names", "at least one name is required")
		}
		for j, n := range d.Names {
			np := fmt.Sprintf("%s.names[%d]", dp, j)
			key := NormalizeHost(n)
			switch {
			case !validDomain(key):
				v.add(np, "%q is not a host name or a \"*.\" wildcard of one", n)
			case names[key]:
				v.add(np, "%q is already a name of another domain of this listener", n)
			}
			names[key] = true
		}
		if d.TargetGroup != "" && groups[d.TargetGroup] == nil {
			v.add(dp+".target_group", "unknown target group %q", d.TargetGroup)
		}
		if d.SSL != nil {
			v.ssl(dp+".ssl", d.SSL, certs)
			v.refusal(dp+".ssl", l, d.SSL)
		}
		v.rules(dp+".rules", l, d.Rules, groups)
	}
}

// refusal checks that refusal: http is on an https listener, the one kind whose every
// request tlsgate answers itself.
func (v *validator) refusal(p string, l *Listener, s *SSL) {
	if s.Refusal == RefuseHTTP && l.Protocol != ProtoHTTPS {
		v.add(p+".refusal", "http needs protocol https, not %s", l.Protocol)
	}
}

func (v *validator) rules(p string, l *Listener, rules []Rule, groups map[string]*TargetGroup) {
	seen := map[string]bool{}
	for i, r := range rules {
		rp := fmt.Sprintf("%s[%d]", p, i)
		if l.Protocol != ProtoHTTPS && l.Protocol != ProtoHTTP {
			v.add(rp, "path rules need an http or https listener")
			return
		}
		if !strings.HasPrefix(r.Path, "/") {
			v.add(rp+".path", "must start with /, not %q", r.Path)
		}
		if seen[r.Path] {
			v.add(rp+".path", "duplicate path %q", r.Path)
		}
		seen[r.Path] = true
		if r.TargetGroup != "" && groups[r.TargetGroup] == nil {
			v.add(rp+".target_group", "unknown target group %q", r.TargetGroup)
		}
		if !r.Allow.Empty() && l.Protocol != ProtoHTTPS {
			v.add(rp+".allow", "needs client certificates: use an https listener in mutual or optional mode")
		}
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ParsePrefix parses "10.0.0.0/8" or a single address ("10.0.0.1", as /32 or /128).
func ParsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// NormalizeHost lower-cases a host name and drops a trailing dot and a port, so that
// "API.example.com.:443" and "api.example.com" are one name (Traefik CVE-2022-23632
// fell back to default TLS options for a trailing-dot Host).
func NormalizeHost(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

func validCookieName(n string) bool {
	for _, c := range n {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", c) {
			return false
		}
	}
	return n != ""
}

func validDomain(n string) bool {
	n = strings.TrimPrefix(n, "*.")
	if n == "" || len(n) > 253 {
		return false
	}
	for label := range strings.SplitSeq(n, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func (v *validator) ssl(p string, s *SSL, certs map[string]*Certificate) {
	if !s.Mode.Valid() {
		v.add(p+".mode", "must be one_way, mutual or optional, not %q", s.Mode)
	}
	if len(s.ServerCertificates) == 0 {
		v.add(p+".server_certificates", "at least one server certificate is required")
	}
	for i, id := range s.ServerCertificates {
		c := certs[id]
		switch {
		case c == nil:
			v.add(fmt.Sprintf("%s.server_certificates[%d]", p, i), "unknown certificate %q", id)
		case c.IsCA():
			v.add(fmt.Sprintf("%s.server_certificates[%d]", p, i), "certificate %q is a CA bundle, not a server certificate", id)
		}
	}
	switch {
	case s.CACertificate == "" && (s.Mode == ModeMutual || s.Mode == ModeOptional):
		v.add(p+".ca_certificate", "required when mode is %s", s.Mode)
	case s.CACertificate != "" && s.Mode == ModeOneWay:
		v.add(p+".ca_certificate", "not used when mode is one_way; set mode: mutual or optional")
	case s.CACertificate != "":
		if c := certs[s.CACertificate]; c == nil {
			v.add(p+".ca_certificate", "unknown certificate %q", s.CACertificate)
		} else if !c.IsCA() {
			v.add(p+".ca_certificate", "certificate %q is a server certificate, not a CA bundle (set ca:)", s.CACertificate)
		}
	}
	if s.Policy != "" && !slices.Contains(Policies, s.Policy) {
		v.add(p+".policy", "unknown policy %q (known: %v)", s.Policy, Policies)
	}
	for _, f := range []struct{ name, val string }{{"min_version", s.MinVersion}, {"max_version", s.MaxVersion}} {
		if f.val != "" && !slices.Contains(TLSVersions, f.val) {
			v.add(p+"."+f.name, "must be 1.0, 1.1, 1.2 or 1.3, not %q", f.val)
		}
	}
	known := map[string]bool{}
	for _, cs := range tls.CipherSuites() {
		known[cs.Name] = true
	}
	for i, name := range s.Ciphers {
		if !known[name] {
			v.add(fmt.Sprintf("%s.ciphers[%d]", p, i), "unknown or insecure cipher suite %q (use Go names such as TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)", name)
		}
	}
	minV, maxV := slices.Index(TLSVersions, s.MinVersion), slices.Index(TLSVersions, s.MaxVersion)
	if minV >= 0 && maxV >= 0 && minV > maxV {
		v.add(p+".min_version", "is above max_version")
	}
	if minV >= 0 && minV < 2 && !legacyCiphers(s, TLSVersionIDs[minV]) {
		v.add(p+".min_version", "TLS %s needs a cipher suite it can use: set policy: tls12-compat, or list a CBC suite such as TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA in ciphers", s.MinVersion)
	}
	if s.MaxClientChain < 1 || s.MaxClientCertBytes < 512 {
		v.add(p, "max_client_chain must be at least 1 and max_client_cert_bytes at least 512")
	}
	switch {
	case !s.CANames.Valid():
		v.add(p+".ca_names", "must be all or none, not %q", s.CANames)
	case s.CANames != "" && s.Mode == ModeOneWay:
		v.add(p+".ca_names", "not used when mode is one_way; set mode: mutual or optional")
	}
	switch {
	case !s.Refusal.Valid():
		v.add(p+".refusal", "must be handshake or http, not %q", s.Refusal)
	case s.Refusal == RefuseHTTP && s.Mode != ModeMutual:
		v.add(p+".refusal", "http is for mode mutual (optional forwards the verdict; one_way asks for no certificate)")
	}
	switch {
	case s.ExpiryGrace < 0 || time.Duration(s.ExpiryGrace) > 365*24*time.Hour:
		v.add(p+".expiry_grace", "must be between 0 and 8760h (365 days)")
	case s.ExpiryGrace != 0 && s.Mode == ModeOneWay:
		v.add(p+".expiry_grace", "not used when mode is one_way; set mode: mutual or optional")
	}
	switch {
	case s.VerifyCache < 0 || s.VerifyCache > MaxVerifyCache:
		v.add(p+".verify_cache", "must be between 0 (off) and %d chains", MaxVerifyCache)
	case s.VerifyCache != 0 && s.Mode == ModeOneWay:
		v.add(p+".verify_cache", "not used when mode is one_way; set mode: mutual or optional")
	}
	if !s.Allow.Empty() && s.Mode == ModeOneWay {
		v.add(p+".allow", "needs client certificates; set mode: mutual or optional")
	}
	v.allow(p+".allow", s.Allow)
	if a := s.Audit; a != nil {
		ap := p + ".audit"
		switch c := certs[a.CACertificate]; {
		case s.Mode == ModeOneWay:
			v.add(ap, "needs client certificates; set mode: mutual or optional")
		case a.CACertificate == "":
			v.add(ap+".ca_certificate", "required: the CA bundle to try")
		case c == nil:
			v.add(ap+".ca_certificate", "unknown certificate %q", a.CACertificate)
		case !c.IsCA():
			v.add(ap+".ca_certificate", "certificate %q is a server certificate, not a CA bundle (set ca:)", a.CACertificate)
		}
		v.allow(ap+".allow", a.Allow)
	}
}

// allow checks an allow-list's pins.
func (v *validator) allow(p string, a *Allow) {
	if a == nil {
		return
	}
	for i, h := range a.SPKISHA256 {
		if b, err := hex.DecodeString(h); err != nil || len(b) != 32 {
			v.add(fmt.Sprintf("%s.spki_sha256[%d]", p, i), "must be 64 hex digits")
		}
	}
}
