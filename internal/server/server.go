// Package server assembles a running tlsgate from a config file: it builds the
// certificate store, one State per listener and the target groups, opens the sockets,
// and serves. Reload builds everything new, then swaps; when anything fails to build,
// the running configuration keeps serving and the errors are logged. It also owns the
// file watcher, signals and drain. It is the only package that imports (almost) all.
package server

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"tlsgate/internal/admin"
	"tlsgate/internal/backend"
	"tlsgate/internal/certstore"
	"tlsgate/internal/config"
	"tlsgate/internal/listener"
	"tlsgate/internal/listensock"
	"tlsgate/internal/metrics"
	"tlsgate/internal/status"
	"tlsgate/internal/ticketkeys"
	"tlsgate/internal/tlsconf"
)

// Options are the edges of a Server.
type Options struct {
	// ConfigPath is the YAML file to load and reload.
	ConfigPath string
	// Log receives the JSON log lines; nil discards.
	Log *slog.Logger
	// Metrics; nil creates a fresh set.
	Metrics *metrics.Metrics
	// Now is the clock for certificate checks; nil means time.Now.
	Now func() time.Time
	// Listen opens sockets; nil means listensock.Listen.
	Listen func(network, addr string) (net.Listener, error)
	// OnReload, when set, is called after every reload attempt with its outcome.
	OnReload func(error)
	// Access, when set, overrides log.access of every config loaded (--log-access).
	Access string
	// Dial connects to targets; nil means a net.Dialer (the target group's
	// connect_timeout bounds it).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Config, when set, is the configuration to start with instead of reading
	// ConfigPath (fleet mode: later ones arrive through Apply).
	Config *config.Config
	// Fleet, when set, is where the admin API's changes go (fleet mode).
	Fleet Fleet
}

// Server is a running tlsgate.
type Server struct {
	opts Options

	mu        sync.Mutex // serialises Reload and Shutdown
	cfg       *config.Config
	store     *certstore.Store
	listeners map[string]*listener.Listener
	admin     *http.Server
	adminLn   net.Listener
	wg        sync.WaitGroup
	stamps    map[string]string
	stopCheck context.CancelFunc // stops the health checkers of the running config
	stopCRL   context.CancelFunc // stops the CRL refresh loop and the ticket-key rotator
	keys      *ticketkeys.Ring   // session-ticket keys of every policy, rotated, across reloads
	groups    map[string]*backend.Group
	history   *status.Recorder // what the listeners saw, for /api/v1/status and the console
	// headers is the header memory budget of every listener (max_header_memory).
	headers *listener.HeaderBudget
	// lingerers bounds the lingering closes of every listener.
	lingerers *listener.Lingerers
}

// New returns a server that has not started.
func New(opts Options) *Server {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.New()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Listen == nil {
		opts.Listen = listensock.Listen
	}
	return &Server{opts: opts, listeners: map[string]*listener.Listener{}, keys: ticketkeys.New(ticketkeys.Options{Log: opts.Log}),
		history: status.NewRecorder(opts.Now), headers: listener.NewHeaderBudget(listener.DefaultHeaderBudget),
		lingerers: listener.NewLingerers(listener.DefaultMaxLingering)}
}

// verifyCacheObserver counts a listener's ssl.verify_cache lookups
// (tlsgate_client_verify_cache_total).
func (s *Server) verifyCacheObserver(listener string) func(hit bool) {
	hits := s.opts.Metrics.VerifyCache.WithLabelValues(listener, "hit")
	misses := s.opts.Metrics.VerifyCache.WithLabelValues(listener, "miss")
	return func(hit bool) {
		if hit {
			hits.Inc()
		} else {
			misses.Inc()
		}
	}
}

// built is everything a config turns into before any socket is touched.
type built struct {
	cfg    *config.Config
	store  *certstore.Store
	states map[string]*listener.State
	groups map[string]*backend.Group
}

// build loads and builds a config without serving it.
func build(path string, now func() time.Time, prev *certstore.Store, keys *ticketkeys.Ring) (*built, error) {
	cfg, err := config.LoadPartial(path)
	if ps, ok := errors.AsType[config.Problems](err); ok && cfg != nil {
		ps = append(ps, fileProblems(cfg, ps, now())...)
		if !slices.ContainsFunc(ps, func(p config.Problem) bool { return strings.HasPrefix(p.Path, "admin") }) {
			ps = append(ps, tokenProblems(cfg)...)
		}
		return nil, ps
	}
	if err != nil {
		return nil, err
	}
	return buildConfig(cfg, now, prev, keys)
}

// fileProblems are the problems of the certificate, key and CRL files named by cfg, a
// config with the problems known: so that one run reports a missing file beside an
// unknown field (issue 2: every problem at once). A certificate entry that a known
// problem is about is left out: its files may be named wrongly for that reason.
func fileProblems(cfg *config.Config, known config.Problems, now time.Time) config.Problems {
	for _, k := range known {
		if k.Path == "certificates" || strings.HasPrefix(k.Path, "certificates[") && !strings.Contains(k.Path, ".") {
			// A whole entry is at fault: one that did not decode is left out of the
			// list, and the paths of those after it would name the wrong lines.
			return nil
		}
	}
	_, err := certstore.Build(cfg, now)
	ps, _ := errors.AsType[config.Problems](err)
	var out config.Problems
	for _, p := range ps {
		entry, _, _ := strings.Cut(p.Path, "].")
		entry += "]"
		if !slices.ContainsFunc(known, func(k config.Problem) bool {
			return k.Path == entry || strings.HasPrefix(k.Path, entry+".")
		}) {
			out = append(out, p)
		}
	}
	return out
}

// buildConfig builds a decoded, validated config. OCSP answers cached by prev (the
// running store) are kept for CA bundles that did not change.
func buildConfig(cfg *config.Config, now func() time.Time, prev *certstore.Store, keys *ticketkeys.Ring) (*built, error) {
	store, err := certstore.Build(cfg, now())
	if err != nil {
		if ps, ok := errors.AsType[config.Problems](err); ok {
			// One run names every problem: the admin token too (admin.ssl needs the store).
			return nil, append(ps, tokenProblems(cfg)...)
		}
		return nil, err
	}
	store.KeepOCSP(prev)
	if ps := append(caNameProblems(cfg, store), adminProblems(cfg, store, now)...); len(ps) > 0 {
		return nil, ps
	}
	groups := map[string]*backend.Group{}
	var errs []error
	for i := range cfg.TargetGroups {
		gc := &cfg.TargetGroups[i]
		g, err := backend.NewGroup(gc, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if gc.TLS != nil {
			bt, err := tlsconf.Backend(gc.TLS, store, now)
			if err != nil {
				errs = append(errs, fmt.Errorf("target group %q: %w", gc.ID, err))
				continue
			}
			g.SetTLS(bt)
		}
		groups[g.ID] = g
	}
	b := &built{cfg: cfg, store: store, states: map[string]*listener.State{}, groups: groups}
	deny := denyFunc(cfg.Denylist)
	for i := range cfg.Listeners {
		lc := &cfg.Listeners[i]
		st, err := buildState(lc, store, groups, now, deny, keys)
		if err != nil {
			errs = append(errs, fmt.Errorf("listener %q: %w", lc.ID, err))
			continue
		}
		b.states[lc.ID] = st
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return b, nil
}

// caNameProblems points at the ca_certificate of every ssl block whose bundle names more
// CAs than a CertificateRequest can carry (tlsconf.New refuses them too, without a line).
func caNameProblems(cfg *config.Config, store *certstore.Store) config.Problems {
	var ps config.Problems
	check := func(path string, s *config.SSL) {
		if s == nil || s.Mode == config.ModeOneWay || s.CANames == config.CANamesNone {
			return
		}
		if ca := store.CAs[s.CACertificate]; ca != nil {
			if err := tlsconf.CheckCANames(ca); err != nil {
				ps = append(ps, cfg.Problem(path+".ca_certificate", err.Error()))
			}
		}
	}
	for i := range cfg.Listeners {
		l := &cfg.Listeners[i]
		check(fmt.Sprintf("listeners[%d].ssl", i), l.SSL)
		for j := range l.Domains {
			check(fmt.Sprintf("listeners[%d].domains[%d].ssl", i, j), l.Domains[j].SSL)
		}
	}
	return ps
}

// buildState makes a listener's runtime state: its default policy and one per domain.
func buildState(lc *config.Listener, store *certstore.Store, groups map[string]*backend.Group, now func() time.Time, deny func(*x509.Certificate) bool, keys *ticketkeys.Ring) (*listener.State, error) {
	var alpn []string
	if lc.Protocol == config.ProtoHTTPS {
		alpn = []string{"h2", "http/1.1"}
	}
	var tickets func(*tls.Config, string, [][]byte) // nil (check): fresh keys
	if keys != nil {
		tickets = keys.Attach
	}
	auth := func(s *config.SSL, scope string) (*tlsconf.Auth, error) {
		if s == nil {
			return nil, nil
		}
		return tlsconf.New(s, store, tlsconf.Env{ALPN: alpn, Now: now, Deny: deny, Scope: scope, Tickets: tickets, HTTPRefusal: lc.Protocol == config.ProtoHTTPS})
	}
	def, err := auth(lc.SSL, lc.ID)
	if err != nil {
		return nil, err
	}
	st := &listener.State{
		ID: lc.ID, Protocol: lc.Protocol,
		Forward:           lc.ForwardClientCert,
		HandshakeTimeout:  time.Duration(lc.HandshakeTimeout),
		ProxyProtocol:     map[string]byte{"v1": 1, "v2": 2}[lc.ProxyProtocol],
		MaxConnections:    lc.MaxConnections,
		RedirectHTTPSPort: lc.RedirectHTTPSPort,
		HeaderTimeout:     time.Duration(lc.HeaderTimeout),
		IdleTimeout:       time.Duration(lc.IdleTimeout),
		TCPIdleTimeout:    time.Duration(lc.TCPIdleTimeout),
		WriteTimeout:      time.Duration(lc.WriteTimeout),
		HeaderLimits:      listener.HeaderLimits{Bytes: lc.MaxHeaderBytes, Fields: lc.MaxHeaderFields, FieldBytes: lc.MaxHeaderFieldBytes},
		Default:           &listener.Domain{Auth: def, Group: groups[lc.TargetGroup], Rules: buildRules(lc.Rules, groups)},
	}
	for _, a := range lc.AcceptProxyProtocol {
		p, err := config.ParsePrefix(a)
		if err != nil {
			return nil, err
		}
		st.Trusted = append(st.Trusted, p)
	}
	var domains []*listener.Domain
	// Domains whose ssl settings are equal share one policy, so the Host check (same
	// policy as the SNI's, else 421) does not refuse a connection coalesced across them
	// (N13); domains that differ in any setting keep their own policies and tickets.
	made := map[*tlsconf.Auth]*config.SSL{def: lc.SSL}
	for j, dc := range lc.Domains {
		d := &listener.Domain{Names: dc.Names, Auth: def, Group: st.Default.Group, Rules: buildRules(dc.Rules, groups)}
		if dc.SSL != nil {
			d.Auth = nil
			for a, s := range made {
				if a != nil && reflect.DeepEqual(s, dc.SSL) {
					d.Auth = a
				}
			}
			if d.Auth == nil {
				if d.Auth, err = auth(dc.SSL, lc.ID+"/"+strings.Join(dc.Names, ",")); err != nil {
					return nil, fmt.Errorf("domains[%d] %v: %w", j, dc.Names, err)
				}
				made[d.Auth] = dc.SSL
			}
		}
		if dc.TargetGroup != "" {
			d.Group = groups[dc.TargetGroup]
		}
		domains = append(domains, d)
	}
	return listener.NewState(st, domains), nil
}

// tokenProblems is the problem of the admin token file (missing, short), if any.
func tokenProblems(cfg *config.Config) config.Problems {
	if cfg.Admin.Listen == "" {
		return nil
	}
	if _, err := readToken(cfg); err != nil {
		return config.Problems{cfg.Problem("admin.token_file", err.Error())}
	}
	return nil
}

// readToken reads the admin bearer token; "" when none is configured.
func readToken(cfg *config.Config) (string, error) {
	if cfg.Admin.TokenFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(cfg.Resolve(cfg.Admin.TokenFile))
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < 16 {
		return "", fmt.Errorf("%s: the token must be at least 16 characters", cfg.Admin.TokenFile)
	}
	return tok, nil
}

// denyFunc matches certificates on the denylist; nil when it is empty.
func denyFunc(d config.Denylist) func(*x509.Certificate) bool {
	if len(d.Serials)+len(d.SPKISHA256) == 0 {
		return nil
	}
	serials, pins := map[string]bool{}, map[string]bool{}
	for _, s := range d.Serials {
		serials[strings.TrimLeft(strings.ToUpper(strings.ReplaceAll(s, ":", "")), "0")] = true
	}
	for _, p := range d.SPKISHA256 {
		pins[strings.ToLower(p)] = true
	}
	return func(c *x509.Certificate) bool {
		sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
		return serials[strings.ToUpper(c.SerialNumber.Text(16))] || pins[hex.EncodeToString(sum[:])]
	}
}

// buildRules orders rules longest path first, so the first match is the longest.
func buildRules(rs []config.Rule, groups map[string]*backend.Group) []listener.Rule {
	out := make([]listener.Rule, 0, len(rs))
	for _, r := range rs {
		out = append(out, listener.Rule{Path: r.Path, Group: groups[r.TargetGroup], Allow: tlsconf.AllowList(r.Allow)})
	}
	slices.SortStableFunc(out, func(a, b listener.Rule) int { return len(b.Path) - len(a.Path) })
	return out
}

// Start loads the config, opens every socket and starts serving. It fails when the
// config is invalid or a socket cannot be opened.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	stamps := stampFiles(s.watched())
	cfg := s.opts.Config
	if cfg == nil {
		var err error
		if cfg, err = config.Load(s.opts.ConfigPath); err != nil {
			return err
		}
	}
	// Fetch CRLs named by URL before the first build, so a mutual listener does not
	// start without them (fail closed) when they can be had.
	s.fetchRevocation(context.Background(), cfg)
	b, err := buildConfig(cfg, s.opts.Now, nil, s.keys)
	if err != nil {
		return err
	}
	if err := s.apply(b, stamps); err != nil {
		return err
	}
	s.logWarnings(append(b.store.Warnings, adminWarnings(b.cfg)...))
	s.opts.Metrics.Reloaded(true, time.Now())
	ctx, cancel := context.WithCancel(context.Background())
	s.stopCRL = cancel
	s.wg.Go(func() { s.crlLoop(ctx) })
	s.wg.Go(func() { s.keys.Run(ctx) })
	if b.cfg.Admin.Listen != "" {
		if err := s.startAdmin(b); err != nil {
			s.closeAll(context.Background())
			return err
		}
	}
	return nil
}

// startAdmin serves the admin listener: plain HTTP, or HTTPS requiring a client
// certificate when admin.ssl is set. Its settings are read once, at start.
func (s *Server) startAdmin(b *built) error {
	token, err := readToken(b.cfg)
	if err != nil {
		return fmt.Errorf("admin.token_file: %w", err)
	}
	var tc *tls.Config
	if b.cfg.Admin.SSL != nil {
		// Its tickets rotate with the listeners'; its scope starts with a NUL, which no
		// listener id does, so tickets never cross between it and a listener.
		auth, err := tlsconf.New(b.cfg.Admin.SSL, b.store, tlsconf.Env{ALPN: []string{"h2", "http/1.1"}, Now: s.opts.Now, Scope: "\x00admin", Tickets: s.keys.Attach})
		if err != nil {
			return fmt.Errorf("admin.ssl: %w", err)
		}
		tc = auth.Config
	}
	ln, unix, err := s.adminListen(b.cfg.Admin.Listen)
	if err != nil {
		return fmt.Errorf("admin.listen: %w", err)
	}
	s.adminLn = ln
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	s.admin = &http.Server{Handler: admin.Handler(admin.Options{Metrics: s.opts.Metrics, Controller: s, Runtime: s, Token: token, Unix: unix, MutualTLS: tc != nil, Pprof: b.cfg.Admin.Pprof, Health: s.health}), ReadHeaderTimeout: 10 * time.Second}
	s.wg.Go(func() { _ = s.admin.Serve(ln) })
	return nil
}

// apply opens sockets for new listeners, swaps state into kept ones and drains removed
// ones. When a socket cannot be opened nothing changes. stamps are the watched files as
// they were before b was read from them (see stampFiles).
func (s *Server) apply(b *built, stamps map[string]string) error {
	access := s.access(b.cfg)
	for id, st := range b.states {
		st.Access = access // before any listener sees the state
		for _, a := range st.Auths() {
			if a.Verifier != nil && a.Verifier.Cache != nil {
				a.Verifier.Cache.Observe = s.verifyCacheObserver(id)
			}
		}
	}
	s.adoptHealth(b)
	opened := map[string]*listener.Listener{}
	deps := listener.Deps{Log: s.opts.Log, Metrics: s.opts.Metrics, Now: s.opts.Now, Observer: s.history, HeaderBudget: s.headers, Dial: s.opts.Dial,
		Lingerers: s.lingerers}
	var old []*listener.Listener
	for i := range b.cfg.Listeners {
		lc := &b.cfg.Listeners[i]
		if cur := s.listeners[lc.ID]; cur != nil && s.sameSocket(lc, cur) {
			continue
		}
		ln, err := s.opts.Listen("tcp", lc.Listen)
		if err != nil {
			for _, l := range opened {
				_ = l.Shutdown(context.Background())
			}
			if prev := s.running(lc.ID); prev != nil && prev.Listen == lc.Listen {
				if prev.Protocol != lc.Protocol {
					return fmt.Errorf("listener %q: protocol changed, which takes a new socket on the same address: %w; restart tlsgate to apply it", lc.ID, err)
				}
			}
			return fmt.Errorf("listener %q: %w", lc.ID, err)
		}
		opened[lc.ID] = listener.New(ln, b.states[lc.ID], deps)
	}
	next := map[string]*listener.Listener{}
	for id, st := range b.states {
		if l := opened[id]; l != nil {
			next[id] = l
			s.wg.Go(func() { _ = l.Serve() })
			continue
		}
		l := s.listeners[id]
		l.Swap(st)
		next[id] = l
	}
	for id, l := range s.listeners {
		if next[id] != l {
			old = append(old, l)
		}
	}
	s.history.Applied(b.cfg.Denylist, s.cfg == nil)
	s.listeners, s.cfg, s.store, s.groups = next, b.cfg, b.store, b.groups
	s.keys.SetRotation(time.Duration(b.cfg.SessionTickets.Rotation))
	s.headers.SetLimit(b.cfg.MaxHeaderMemory)
	s.startChecks(b)
	s.stamps = stamps
	s.updateExpiry()
	for _, l := range old {
		s.wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(b.cfg.DrainTimeout))
			defer cancel()
			_ = l.Shutdown(ctx)
		})
	}
	return nil
}

// access is the listeners' log.access policy: the override, else the config's. Both
// were validated (config.Validate, the serve flag), so a parse error cannot happen.
func (s *Server) access(cfg *config.Config) listener.Access {
	v := cmp.Or(s.opts.Access, cfg.Log.Access)
	sample, failures, _ := config.ParseAccess(v)
	return listener.Access{Skip: 1 - sample, Off: !failures}
}

// sameSocket reports whether a listener's socket can be kept for lc: the same address
// and protocol. Every other setting, timeouts included, follows a reload on it.
func (s *Server) sameSocket(lc *config.Listener, l *listener.Listener) bool {
	prev := s.running(lc.ID)
	return prev != nil && prev.Listen == lc.Listen && l.Protocol() == lc.Protocol
}

// running returns the running config of listener id, or nil.
func (s *Server) running(id string) *config.Listener {
	if s.cfg == nil {
		return nil
	}
	for i := range s.cfg.Listeners {
		if s.cfg.Listeners[i].ID == id {
			return &s.cfg.Listeners[i]
		}
	}
	return nil
}

// DrainTimeout is the running config's drain_timeout: how long a shutdown waits for
// in-flight work (a removed listener's drain takes its config's).
func (s *Server) DrainTimeout() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg == nil {
		return config.DefaultDrainTimeout
	}
	return time.Duration(s.cfg.DrainTimeout)
}

// Reload re-reads the config and every file it references. On any error the running
// configuration stays and the error is returned (and logged).
func (s *Server) Reload() error {
	if s.opts.Config != nil {
		return s.rebuild()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Stamp before reading: a file that changes while the build reads it then differs
	// from its stamp, and the next poll reloads again. Stamped after, a reload that read
	// a half-written file would take the finished file as already seen, and never load it.
	stamps := stampFiles(s.watched())
	b, err := build(s.opts.ConfigPath, s.opts.Now, s.store, s.keys)
	if err == nil {
		err = s.apply(b, stamps)
	}
	if err != nil {
		// The files of the failed attempt are watched too, so fixing them triggers a reload.
		s.stamps = stamps
	}
	s.reloaded(b, err, "config", s.opts.ConfigPath)
	return err
}

// reloaded logs and counts the outcome of a reload (or of applying a fleet revision).
func (s *Server) reloaded(b *built, err error, what ...any) {
	result := "success"
	if err != nil {
		result = "failure"
		s.opts.Log.Error("reload failed; the running configuration keeps serving", "error", err.Error())
	} else {
		s.logWarnings(b.store.Warnings)
		s.opts.Log.Info("reloaded", what...)
	}
	s.opts.Metrics.Reloads.WithLabelValues(result).Inc()
	s.opts.Metrics.Reloaded(err == nil, time.Now())
	if s.opts.OnReload != nil {
		s.opts.OnReload(err)
	}
}

// Addr returns the bound address of a listener, or nil.
func (s *Server) Addr(id string) net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.listeners[id]; l != nil {
		return l.Addr()
	}
	return nil
}

// ListenerInfo describes a running listener.
type ListenerInfo struct {
	ID       string
	Protocol string
	Addr     string
}

// Listeners describes the running listeners in config order.
func (s *Server) Listeners() []ListenerInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ls []ListenerInfo
	for _, lc := range s.cfg.Listeners {
		if l := s.listeners[lc.ID]; l != nil {
			ls = append(ls, ListenerInfo{ID: lc.ID, Protocol: string(lc.Protocol), Addr: l.Addr().String()})
		}
	}
	return ls
}

// Health reports the listeners that stopped accepting, as /healthz does; nil when all
// accept. The systemd watchdog pings only while it is nil.
func (s *Server) Health() error { return s.health() }

// health is what /healthz reports: an error naming every listener that stopped
// accepting (a fatal accept error; temporary ones are backed off and pass).
func (s *Server) health() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, id := range slices.Sorted(maps.Keys(s.listeners)) {
		if err := s.listeners[id].Err(); err != nil {
			errs = append(errs, fmt.Errorf("listener %q stopped: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// TicketKeys returns the ring every listener's session-ticket keys derive from; a
// fleet replaces its masters with SetMasters, and the running listeners follow.
func (s *Server) TicketKeys() *ticketkeys.Ring { return s.keys }

// AdminAddr returns the admin listener's address, or nil.
func (s *Server) AdminAddr() net.Addr {
	if s.adminLn == nil {
		return nil
	}
	return s.adminLn.Addr()
}

// Shutdown stops accepting, drains in-flight work until ctx ends, and closes everything.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	err := s.closeAll(ctx)
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// startChecks stops the health checkers of the previous config and starts those of b.
func (s *Server) startChecks(b *built) {
	if s.stopCheck != nil {
		s.stopCheck()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stopCheck = cancel
	for i := range b.cfg.TargetGroups {
		gc := &b.cfg.TargetGroups[i]
		hc, g := gc.HealthCheck, b.groups[gc.ID]
		if hc == nil || g == nil {
			continue
		}
		c := &backend.Checker{
			Group: g, Interval: time.Duration(hc.Interval), Timeout: time.Duration(hc.Timeout),
			Rise: hc.HealthyThreshold, Fall: hc.UnhealthyThreshold,
			Probe: backend.Probe(backend.ProbeSpec{Protocol: hc.Protocol, Host: hc.Host, Path: hc.Path, Expect: hc.Expect, Service: hc.Service, TLS: g.TLS}),
			OnChange: func(t *backend.Target, healthy bool, err error) {
				up := 0.0
				if healthy {
					up = 1
				}
				s.opts.Metrics.BackendUp.WithLabelValues(g.ID, t.Address).Set(up)
				if healthy {
					s.opts.Log.Info("target healthy", "group", g.ID, "target", t.Address)
				} else {
					s.opts.Log.Warn("target unhealthy", "group", g.ID, "target", t.Address, "error", err.Error())
				}
			},
		}
		for _, t := range g.Targets {
			s.opts.Metrics.BackendUp.WithLabelValues(g.ID, t.Address).Set(upValue(t))
		}
		s.wg.Go(func() { c.Run(ctx) })
	}
}

func (s *Server) closeAll(ctx context.Context) error {
	if s.stopCheck != nil {
		s.stopCheck()
	}
	if s.stopCRL != nil {
		s.stopCRL()
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(s.listeners)+1)
	for _, l := range maps.Clone(s.listeners) {
		wg.Go(func() { errs <- l.Shutdown(ctx) })
	}
	if s.admin != nil {
		wg.Go(func() { errs <- s.admin.Shutdown(ctx) })
	}
	wg.Wait()
	close(errs)
	var all []error
	for e := range errs {
		all = append(all, e)
	}
	s.listeners = map[string]*listener.Listener{}
	return errors.Join(all...)
}

func (s *Server) updateExpiry() {
	now := s.opts.Now()
	g, at := s.opts.Metrics.CertExpiry, s.opts.Metrics.CertExpiryTimestamp
	g.Reset()
	at.Reset()
	set := func(id, kind, subject string, t time.Time) {
		g.WithLabelValues(id, kind, subject).Set(t.Sub(now).Seconds())
		at.WithLabelValues(id, kind, subject).Set(float64(t.Unix()))
	}
	for id, sc := range s.store.Servers {
		set(id, "server", sc.Cert.Leaf.Subject.String(), sc.Cert.Leaf.NotAfter)
	}
	for id, ca := range s.store.CAs {
		for _, c := range ca.Certs {
			set(id, "ca", c.Subject.String(), c.NotAfter)
		}
		for _, c := range ca.CRLs.List() {
			set(id, "crl", c.List.Issuer.String(), c.List.NextUpdate)
		}
	}
}

func (s *Server) logWarnings(ws config.Problems) {
	for _, w := range ws {
		s.opts.Log.Warn("config warning", "problem", w.String())
	}
}
