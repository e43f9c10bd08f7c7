// Package backend owns target groups: their targets, weights, health, and the scheduler
// that picks one for a new connection or request. Schedulers take a key (the client
// address) rather than an *http.Request, so L4 and L7 share them. A target with weight 0
// is drained; an unhealthy one (active checks) or an ejected one (outlier detection,
// outlier.go) gets no new work, unless too few are left (panic mode). Health survives
// reloads for every target whose group id and address stay (Adopt).
package backend

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"tlsgate/internal/config"
)

// ErrNoTarget means every target of the group is drained or down.
var ErrNoTarget = errors.New("no available target")

// Target is one backend address.
type Target struct {
	// ID names the target in sticky cookies without revealing its address.
	ID      string
	Address string
	Weight  int
	// TLS is the group's TLS config with this target's host as ServerName when the
	// group names none (nil without re-encryption).
	TLS *tls.Config
	// st is the target's health, shared with the same target (group id and address)
	// of the configurations before and after a reload (Adopt).
	st *state
}

// Active is the number of connections or requests in flight to t.
func (t *Target) Active() int64 { return t.st.active.Load() }

// Acquire counts one unit of work on t; call the returned func when it ends.
func (t *Target) Acquire() (release func()) {
	t.st.active.Add(1)
	return func() { t.st.active.Add(-1) }
}

// Healthy reports the active health state (true until a check says otherwise).
func (t *Target) Healthy() bool { return !t.st.down.Load() }

// SetHealthy records the active health state.
func (t *Target) SetHealthy(ok bool) { t.st.down.Store(!ok) }

// Ejected reports whether outlier detection keeps t from new work at now.
func (t *Target) Ejected(now time.Time) bool { return now.UnixNano() < t.st.until.Load() }

// available reports whether t may get new work at now.
func (t *Target) available(now time.Time) bool {
	return t.Weight > 0 && !t.st.down.Load() && !t.Ejected(now)
}

// Scheduler picks one of the available targets for key (the client address); nil when
// none is available. It must neither change nor keep the slice: it may be the group's
// own (Group.Targets).
type Scheduler interface {
	Pick(key string, available []*Target) *Target
}

// Group is a target group.
type Group struct {
	ID string
	// Cookie is the sticky-session cookie name ("" for none).
	Cookie string
	// TLS, when set, re-encrypts to the targets (HTTPS to HTTP backends, TLS to TCP
	// backends), verifying them against its RootCAs and ServerName, optionally
	// presenting a client certificate (mTLS origination).
	TLS     *tls.Config
	Targets []*Target
	// Policy is the group's failure policy: timeouts, retries, outlier ejection,
	// panic threshold, pooling.
	Policy Policy
	// OnEject, when set, is told of each ejection and its length (for the log).
	OnEject func(t *Target, d time.Duration)
	sched   Scheduler
	now     func() time.Time
	ejectMu sync.Mutex // one ejection decision at a time, for the percent cap

	// Protocol is the HTTP version the targets speak (http1, h2c, h2).
	Protocol config.Upstream
}

// NewGroup builds a group from its validated configuration; now is the clock (nil:
// time.Now).
func NewGroup(c *config.TargetGroup, now func() time.Time) (*Group, error) {
	if now == nil {
		now = time.Now
	}
	g := &Group{ID: c.ID, Cookie: c.StickyCookie, Protocol: c.Protocol, Policy: PolicyOf(c), now: now}
	for _, t := range c.Targets {
		w := config.DefaultWeight
		if t.Weight != nil {
			w = *t.Weight
		}
		sum := sha256.Sum256([]byte(c.ID + "\x00" + t.Address))
		g.Targets = append(g.Targets, &Target{Address: t.Address, Weight: w, ID: hex.EncodeToString(sum[:8]), st: &state{}})
	}
	switch c.Scheduler {
	case config.SchedWRR, "":
		g.sched = NewWRR(g.Targets)
	case config.SchedLeastConn:
		g.sched = LeastConn{}
	case config.SchedIPHash:
		g.sched = IPHash{}
	default:
		return nil, fmt.Errorf("target group %q: unknown scheduler %q", c.ID, c.Scheduler)
	}
	return g, nil
}

// SetTLS turns on re-encryption to the group's targets with cfg.
func (g *Group) SetTLS(cfg *tls.Config) {
	g.TLS = cfg
	for _, t := range g.Targets {
		t.TLS = cfg
		if cfg.ServerName == "" {
			host, _, _ := net.SplitHostPort(t.Address)
			t.TLS = cfg.Clone()
			t.TLS.ServerName = host
		}
	}
}

// Pick returns the target for key among the available ones, or ErrNoTarget.
func (g *Group) Pick(key string) (*Target, error) {
	if t := g.pick(key, nil); t != nil {
		return t, nil
	}
	return nil, fmt.Errorf("target group %q: %w (all %d targets drained, unhealthy or failing)", g.ID, ErrNoTarget, len(g.Targets))
}

// Retry returns the target to try after the ones tried failed to connect: another
// available target, or nil when there is none.
func (g *Group) Retry(key string, tried []*Target) *Target { return g.pick(key, tried) }

// pick asks the scheduler among the available targets not in tried. In panic mode
// (fewer than PanicThreshold percent of the group's undrained targets available) every
// undrained target is a candidate: a group whose checks all fail, or whose targets
// were all ejected, still sends traffic, where answering 503 to everyone would be sure
// to fail (Envoy's panic threshold, ALB's fail-open).
func (g *Group) pick(key string, tried []*Target) *Target {
	now := g.ejectClock()
	if len(tried) == 0 && g.allAvailable(now) {
		// The usual case: the scheduler gets the group's own slice, as it would get a
		// copy of it (every target is undrained and available, which is no panic), where
		// the copy was an allocation per request.
		return g.sched.Pick(key, g.Targets)
	}
	var avail, undrained []*Target
	for _, t := range g.Targets {
		if t.Weight == 0 {
			continue
		}
		undrained = append(undrained, t)
		if t.available(now) {
			avail = append(avail, t)
		}
	}
	if len(avail)*100 < g.Policy.PanicThreshold*len(undrained) {
		avail = undrained
	}
	if len(tried) > 0 {
		avail = slices.DeleteFunc(avail, func(t *Target) bool { return slices.Contains(tried, t) })
	}
	return g.sched.Pick(key, avail)
}

// allAvailable reports whether every target of the group is available at now.
func (g *Group) allAvailable(now time.Time) bool {
	for _, t := range g.Targets {
		if !t.available(now) {
			return false
		}
	}
	return true
}

// ejectClock is the time to decide ejections at: now, or when no target of the group
// was ever ejected (the usual case) a fixed time that Ejected answers the same for, so
// that a request does not read the clock for it (two reads of the vDSO clock a
// time.Now, about 0.2 % of a keep-alive request's CPU on the bare CPU).
func (g *Group) ejectClock() time.Time {
	for _, t := range g.Targets {
		if t.st.until.Load() != 0 {
			return g.now()
		}
	}
	return time.Unix(0, 0) // before every ejection's end; Ejected needs until > 0
}

// Sticky returns the available target whose ID is id, or nil: the target a sticky
// cookie names, unless it was drained, went down or left the group.
func (g *Group) Sticky(id string) *Target {
	now := g.ejectClock()
	for _, t := range g.Targets {
		if t.ID == id && t.available(now) {
			return t
		}
	}
	return nil
}
