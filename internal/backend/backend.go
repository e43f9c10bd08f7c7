// Package backend owns target groups: their targets, weights and the scheduler that picks
// one for a new connection or request. Schedulers take a key (client address) rather
// than an *http.Request so that L4 and L7 share them. Health checking arrives later; a
// target with weight 0 is drained (gets no new work).
package backend

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"tlsgate/internal/config"
)

// ErrNoTarget means every target of the group is drained or down.
var ErrNoTarget = errors.New("no available target")

// Target is one backend address.
type Target struct {
	Address string
	Weight  int
	active  atomic.Int64
}

// Active is the number of connections or requests in flight to t.
func (t *Target) Active() int64 { return t.active.Load() }

// Acquire counts one unit of work on t; call the returned func when it ends.
func (t *Target) Acquire() (release func()) {
	t.active.Add(1)
	return func() { t.active.Add(-1) }
}

// Scheduler picks a target for key (the client address).
type Scheduler interface {
	Pick(key string) *Target
}

// Group is a target group.
type Group struct {
	ID      string
	Targets []*Target
	sched   Scheduler
}

// NewGroup builds a group from its validated configuration.
func NewGroup(c *config.TargetGroup) (*Group, error) {
	g := &Group{ID: c.ID}
	for _, t := range c.Targets {
		w := config.DefaultWeight
		if t.Weight != nil {
			w = *t.Weight
		}
		g.Targets = append(g.Targets, &Target{Address: t.Address, Weight: w})
	}
	switch c.Scheduler {
	case config.SchedWRR, "":
		g.sched = NewWRR(g.Targets)
	default:
		return nil, fmt.Errorf("target group %q: scheduler %s is not implemented", c.ID, c.Scheduler)
	}
	return g, nil
}

// Pick returns the target for key, or ErrNoTarget.
func (g *Group) Pick(key string) (*Target, error) {
	if t := g.sched.Pick(key); t != nil {
		return t, nil
	}
	return nil, fmt.Errorf("target group %q: %w", g.ID, ErrNoTarget)
}

// WRR is smooth weighted round robin (nginx's algorithm): over any window of
// sum(weights) picks each target gets its weight's share, evenly interleaved.
type WRR struct {
	mu      sync.Mutex
	targets []*Target
	current []int
}

var _ Scheduler = (*WRR)(nil)

// NewWRR returns a WRR scheduler over targets.
func NewWRR(targets []*Target) *WRR {
	return &WRR{targets: targets, current: make([]int, len(targets))}
}

// Pick implements Scheduler; the key is ignored.
func (w *WRR) Pick(string) *Target {
	w.mu.Lock()
	defer w.mu.Unlock()
	best, total := -1, 0
	for i, t := range w.targets {
		if t.Weight <= 0 {
			continue
		}
		w.current[i] += t.Weight
		total += t.Weight
		if best < 0 || w.current[i] > w.current[best] {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	w.current[best] -= total
	return w.targets[best]
}
