package listener

import (
	"crypto/tls"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"tlsgate/internal/backend"
	"tlsgate/internal/clientauth"
	"tlsgate/internal/config"
	"tlsgate/internal/tlsconf"
)

// State is the hot-swappable part of a listener: what new connections use.
type State struct {
	ID       string
	Protocol config.Protocol
	// Default is the policy for unmatched or absent SNI; Domains are picked by SNI.
	Default *Domain
	// Forward is the identity dialect for HTTP backends.
	Forward          config.Forward
	HandshakeTimeout time.Duration
	// ProxyProtocol is the PROXY header version sent to TCP backends (0: none).
	ProxyProtocol byte
	// HeaderTimeout and IdleTimeout bound HTTP header reads and idle keep-alive
	// connections; they are read when the listener's socket is opened.
	HeaderTimeout, IdleTimeout time.Duration
	// TCPIdleTimeout closes a tcp/tcp_ssl relay silent both ways this long (0: never).
	TCPIdleTimeout time.Duration
	// WriteTimeout closes an HTTP connection (resets an HTTP/2 stream) whose client
	// took no write for this long (0: never).
	WriteTimeout time.Duration
	// HeaderLimits bound a request's header block (zero fields: the defaults).
	HeaderLimits HeaderLimits
	// RedirectHTTPSPort makes an http listener redirect to https on this port.
	RedirectHTTPSPort int
	// MaxConnections refuses connections beyond this many open ones (0: no limit).
	MaxConnections int
	// Trusted are the fronts whose connections must start with a PROXY header.
	Trusted []netip.Prefix
	// Access is which access lines are written (log.access).
	Access Access

	exact    map[string]*Domain
	wildcard map[string]*Domain // by the part after "*."
	tls      *tls.Config
	retired  atomic.Bool // set when a reload replaced this state
}

// Domain is one TLS policy with its routing: the listener's default, or a set of names.
type Domain struct {
	Names []string
	// Auth is nil on tcp and http listeners.
	Auth  *tlsconf.Auth
	Group *backend.Group
	Rules []Rule // longest path first
}

// Rule routes a path prefix.
type Rule struct {
	Path  string
	Group *backend.Group
	Allow *clientauth.AllowList
}

// NewState indexes the domains and builds the TLS config that picks a domain's policy
// by SNI. Names are matched as config.NormalizeHost leaves them.
func NewState(st *State, domains []*Domain) *State {
	st.exact, st.wildcard = map[string]*Domain{}, map[string]*Domain{}
	for _, d := range domains {
		for _, n := range d.Names {
			n = config.NormalizeHost(n)
			if rest, ok := strings.CutPrefix(n, "*."); ok {
				st.wildcard[rest] = d
			} else {
				st.exact[n] = d
			}
		}
	}
	if st.Default.Auth == nil {
		return st
	}
	if len(domains) == 0 {
		st.tls = st.Default.Auth.Config
		return st
	}
	// Each policy keeps its own *tls.Config and ticket keys, so a session from one
	// domain's policy never resumes under another's (nginx CVE-2025-23419).
	st.tls = &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		return st.Lookup(h.ServerName).Auth.Config, nil
	}}
	return st
}

// Auths returns the state's TLS policies, the default's first, each once (nil-free).
func (st *State) Auths() []*tlsconf.Auth {
	var auths []*tlsconf.Auth
	add := func(d *Domain) {
		if d != nil && d.Auth != nil && !slices.Contains(auths, d.Auth) {
			auths = append(auths, d.Auth)
		}
	}
	add(st.Default)
	for _, d := range st.exact {
		add(d)
	}
	for _, d := range st.wildcard {
		add(d)
	}
	return auths
}

// Lookup returns the policy for a name (SNI or Host): an exact name, else a wildcard
// covering exactly one more label, else the default.
func (st *State) Lookup(name string) *Domain {
	if len(st.exact)+len(st.wildcard) == 0 {
		return st.Default
	}
	name = config.NormalizeHost(name)
	if d := st.exact[name]; d != nil {
		return d
	}
	if _, rest, ok := strings.Cut(name, "."); ok {
		if d := st.wildcard[rest]; d != nil {
			return d
		}
	}
	return st.Default
}

// route picks the rule for path: the longest matching prefix, or none.
func (d *Domain) route(path string) *Rule {
	for i := range d.Rules {
		if strings.HasPrefix(path, d.Rules[i].Path) {
			return &d.Rules[i]
		}
	}
	return nil
}
