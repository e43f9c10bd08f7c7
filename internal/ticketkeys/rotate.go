package ticketkeys

import (
	"context"
	"time"
)

// Rotate brings a local set up to date at the ring's clock: it draws a new master when
// the newest is Rotation old, and drops every master whose successor has been encrypting
// for Rotation (its tickets are then at least that old). It does nothing once SetMasters
// has been called. Run calls it; tests may too.
func (r *Ring) Rotate() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.external {
		return
	}
	now := r.now()
	drew := false
	if !now.Before(r.masters[0].Created.Add(r.rotation)) {
		r.masters = append([]Master{NewMaster(now)}, r.masters...)
		drew = true
	}
	keep := 1
	for keep < len(r.masters) && now.Before(r.masters[keep-1].Created.Add(r.rotation)) {
		keep++
	}
	dropped := len(r.masters) - keep
	if !drew && dropped == 0 {
		return
	}
	clear(r.masters[keep:]) // no copy of a dropped secret left in the backing array
	r.masters = r.masters[:keep]
	r.update()
	r.log.Info("session ticket keys rotated", "newest", r.masters[0], "keys", len(r.masters), "dropped", dropped)
}

// next is how long until Rotate has something to do; ok is false when it never will
// (the set is external).
func (r *Ring) next() (time.Duration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.external {
		return 0, false
	}
	at := r.masters[0].Created.Add(r.rotation)
	for i := 1; i < len(r.masters); i++ {
		if d := r.masters[i-1].Created.Add(r.rotation); d.Before(at) {
			at = d
		}
	}
	return max(at.Sub(r.now()), 0), true
}

// Run rotates the set on time until ctx ends. A reload's SetRotation and a SetMasters
// wake it, so a new period applies at once and an external set stops local rotation.
func (r *Ring) Run(ctx context.Context) {
	for {
		r.Rotate()
		wait, ok := r.next()
		var tick <-chan time.Time
		var timer *time.Timer
		if ok {
			timer = time.NewTimer(wait)
			tick = timer.C
		}
		select {
		case <-ctx.Done():
		case <-r.kick:
		case <-tick:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}
