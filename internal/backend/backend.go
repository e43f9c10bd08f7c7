// Package backend owns target groups: their targets, weights, health, and the scheduler
// that picks one for a new connection or request. Schedulers take a key (the client
// address) rather than an *http.Request, so L4 and L7 share them. A target with weight 0
// is drained; an unhealthy one (active checks) or one that just failed a connection
// (passive marking) gets no new work.
package backend

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"tlsgate/internal/config"
)

// ErrNoTarget means every target of the group is drained or down.
var ErrNoTarget = errors.New("no available target")

// PassiveCooldown is how long a target that refused a connection gets no new work.
const PassiveCooldown = 10 * time.Second

// Target is one backend address.
type Target struct {
	// ID names the target in sticky cookies without revealing its address.
	ID      string
	Address string
	Weight  int
	// TLS is the group's TLS config with this target's host as ServerName when the
	// group names none (nil without re-encryption).
	TLS    *tls.Config
	active atomic.Int64
	down   atomic.Bool  // set by active health checks
	until  atomic.Int64 // passive: unix nanos until which the target is skipped
}

// Active is the number of connections or requests in flight to t.
func (t *Target) Active() int64 { return t.active.Load() }

// Acquire counts one unit of work on t; call the returned func when it ends.
func (t *Target) Acquire() (release func()) {
	t.active.Add(1)
	return func() { t.active.Add(-1) }
}

// Healthy reports the active health state (true until a check says otherwise).
func (t *Target) Healthy() bool { return !t.down.Load() }

// SetHealthy records the active health state.
func (t *Target) SetHealthy(ok bool) { t.down.Store(!ok) }

// Failed marks a connection failure: no new work for PassiveCooldown.
func (t *Target) Failed(now time.Time) { t.until.Store(now.Add(PassiveCooldown).UnixNano()) }

// available reports whether t may get new work at now.
func (t *Target) available(now time.Time) bool {
	return t.Weight > 0 && !t.down.Load() && now.UnixNano() >= t.until.Load()
}

// Scheduler picks one of the available targets for key (the client address); nil when
// none is available.
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
	sched   Scheduler
	now     func() time.Time

	// Protocol is the HTTP version the targets speak (http1, h2c, h2).
	Protocol config.Upstream
}

// NewGroup builds a group from its validated configuration; now is the clock (nil:
// time.Now).
func NewGroup(c *config.TargetGroup, now func() time.Time) (*Group, error) {
	if now == nil {
		now = time.Now
	}
	g := &Group{ID: c.ID, Cookie: c.StickyCookie, Protocol: c.Protocol, now: now}
	for _, t := range c.Targets {
		w := config.DefaultWeight
		if t.Weight != nil {
			w = *t.Weight
		}
		sum := sha256.Sum256([]byte(c.ID + "\x00" + t.Address))
		g.Targets = append(g.Targets, &Target{Address: t.Address, Weight: w, ID: hex.EncodeToString(sum[:8])})
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
	now := g.now()
	avail := make([]*Target, 0, len(g.Targets))
	for _, t := range g.Targets {
		if t.available(now) {
			avail = append(avail, t)
		}
	}
	if t := g.sched.Pick(key, avail); t != nil {
		return t, nil
	}
	return nil, fmt.Errorf("target group %q: %w (all %d targets drained, unhealthy or failing)", g.ID, ErrNoTarget, len(g.Targets))
}

// Sticky returns the available target whose ID is id, or nil: the target a sticky
// cookie names, unless it was drained, went down or left the group.
func (g *Group) Sticky(id string) *Target {
	now := g.now()
	for _, t := range g.Targets {
		if t.ID == id && t.available(now) {
			return t
		}
	}
	return nil
}

// Failed records a connection failure to t (passive health marking).
func (g *Group) Failed(t *Target) { t.Failed(g.now()) }
