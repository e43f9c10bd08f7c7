package backend

import (
	"sync"
	"sync/atomic"
	"time"

	"tlsgate/internal/config"
)

// Policy is a target group's failure policy (config.TargetGroup documents each field
// and its default).
type Policy struct {
	ConnectTimeout  time.Duration
	ResponseTimeout time.Duration
	Retries         int
	// Outlier ejection.
	ConsecutiveFailures       int
	BaseEjection, MaxEjection time.Duration
	MaxEjectionPercent        int
	PanicThreshold            int // percent
	// Connection pools (HTTP/1.1, and h2c/h2 connections without a stream).
	MaxIdlePerTarget int
	IdleTimeout      time.Duration
}

// PolicyOf reads the policy of a target group whose defaults were set; fields left
// unset take config's defaults.
func PolicyOf(c *config.TargetGroup) Policy {
	g := *c
	if g.Outlier != nil {
		o := *g.Outlier
		g.Outlier = &o
	}
	g.SetPolicyDefaults()
	o := g.Outlier
	return Policy{
		ConnectTimeout: time.Duration(g.ConnectTimeout), ResponseTimeout: time.Duration(g.ResponseTimeout),
		Retries: *g.Retries, PanicThreshold: *g.PanicThreshold,
		ConsecutiveFailures: o.ConsecutiveFailures, BaseEjection: time.Duration(o.BaseEjection),
		MaxEjection: time.Duration(o.MaxEjection), MaxEjectionPercent: *o.MaxEjectionPercent,
		MaxIdlePerTarget: *g.MaxIdlePerTarget, IdleTimeout: time.Duration(g.IdleTimeout),
	}
}

// state is a target's health: what active checks and outlier detection found. It is
// shared by the Target values of one target across reloads.
type state struct {
	active atomic.Int64
	down   atomic.Bool  // set by active health checks
	until  atomic.Int64 // ejected until (unix nanos)

	mu        sync.Mutex
	fails     int       // connect failures and timeouts in a row
	ejections int       // ejections in a row, for the doubling
	calm      time.Time // the streak of ejections ends at a success after this
	rise      int       // active checks: successes in a row
	fall      int       // active checks: failures in a row
}

// Adopt takes over the health of prev's targets (the same group in the configuration
// before a reload or an admin API change) for every target with the same address, so
// that a reload does not bring back a target a check found down or outlier detection
// ejected. Call it before g serves.
func (g *Group) Adopt(prev *Group) {
	if prev == nil || prev.ID != g.ID {
		return
	}
	for _, t := range g.Targets {
		for _, p := range prev.Targets {
			if p.Address == t.Address {
				t.st = p.st
				break
			}
		}
	}
}

// Report records the outcome of a connect (and, for HTTP, of the wait for the
// response header) to t: nil for success, else an error that counts against the
// target only when Fault says it is the target's. ConsecutiveFailures of those in a
// row eject it, unless that would eject more than MaxEjectionPercent of the group or
// its last available target.
func (g *Group) Report(t *Target, err error) {
	s := t.st
	if err == nil {
		// The clock only for a target that was ejected: a success is every request's.
		s.mu.Lock()
		s.fails = 0
		if s.ejections > 0 && g.now().After(s.calm) {
			s.ejections = 0
		}
		s.mu.Unlock()
		return
	}
	now := g.now()
	if !Fault(err) {
		return
	}
	s.mu.Lock()
	s.fails++
	eject := s.fails >= g.Policy.ConsecutiveFailures && !t.Ejected(now)
	s.mu.Unlock()
	if eject {
		g.eject(t, now)
	}
}

// eject takes t out for its ejection time when the group can spare it.
func (g *Group) eject(t *Target, now time.Time) {
	g.ejectMu.Lock()
	defer g.ejectMu.Unlock()
	undrained, ejected, others := 0, 0, 0
	for _, x := range g.Targets {
		if x.Weight == 0 {
			continue
		}
		undrained++
		switch {
		case x.Ejected(now):
			ejected++
		case x != t && x.Healthy():
			others++
		}
	}
	if others == 0 || (ejected+1)*100 > g.Policy.MaxEjectionPercent*undrained {
		return // the last available target, or too many ejected already
	}
	s := t.st
	s.mu.Lock()
	d := g.Policy.BaseEjection << min(s.ejections, 30)
	if d <= 0 || d > g.Policy.MaxEjection {
		d = g.Policy.MaxEjection
	}
	s.ejections++
	s.fails = 0
	until := now.Add(d)
	// A success after as long again as this ejection ends the streak of doublings.
	s.calm = until.Add(d)
	s.until.Store(until.UnixNano())
	s.mu.Unlock()
	if g.OnEject != nil {
		g.OnEject(t, d)
	}
}
