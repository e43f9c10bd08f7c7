package config

import (
	"cmp"
	"time"
)

// The failure policy's defaults. Why these values:
//   - connect_timeout 5s: a connect on a LAN takes milliseconds; 5 s covers SYN
//     retransmits (1 s, then 3 s) and moves on to the next target well before a
//     client gives up (Envoy's default is also 5 s; nginx waits 60 s).
//   - response_timeout 60s: nginx's proxy_read_timeout; slow endpoints (reports,
//     uploads being processed) need that long, and a client waits that long.
//   - retries 2: three targets tried per request, as HAProxy's "retries 3" with
//     redispatch; bounded so a dead group costs little.
//   - outlier 5 failures, 10s doubling to 300s, at most 50% ejected: Envoy's defaults
//     (consecutive_5xx 5, base_ejection_time 30s, max 300s) with a shorter first
//     ejection, as one refusal used to cost 10 s here; 50% keeps half the capacity.
//   - panic_threshold 50: Envoy's healthy_panic_threshold.
//   - max_idle_per_target 32 and idle_timeout 60s: nginx's upstream keepalive_timeout
//     is 60 s. No value can stay below every backend's own keep-alive (gunicorn 2 s,
//     Node 5 s, Apache 5 s); a connection the backend closed is found by a check before
//     reuse instead, so the timeout only bounds how long idle sockets are held.
const (
	DefaultConnectTimeout      = 5 * time.Second
	DefaultResponseTimeout     = 60 * time.Second
	DefaultRetries             = 2
	DefaultConsecutiveFailures = 5
	DefaultBaseEjection        = 10 * time.Second
	DefaultMaxEjection         = 300 * time.Second
	DefaultMaxEjectionPercent  = 50
	DefaultPanicThreshold      = 50
	DefaultMaxIdlePerTarget    = 32
	DefaultPoolIdleTimeout     = 60 * time.Second
)

// SetPolicyDefaults fills the failure policy of a target group.
func (g *TargetGroup) SetPolicyDefaults() {
	g.ConnectTimeout = cmp.Or(g.ConnectTimeout, Duration(DefaultConnectTimeout))
	g.ResponseTimeout = cmp.Or(g.ResponseTimeout, Duration(DefaultResponseTimeout))
	g.IdleTimeout = cmp.Or(g.IdleTimeout, Duration(DefaultPoolIdleTimeout))
	g.Retries = intOr(g.Retries, DefaultRetries)
	g.PanicThreshold = intOr(g.PanicThreshold, DefaultPanicThreshold)
	g.MaxIdlePerTarget = intOr(g.MaxIdlePerTarget, DefaultMaxIdlePerTarget)
	if g.Outlier == nil {
		g.Outlier = &Outlier{}
	}
	o := g.Outlier
	o.ConsecutiveFailures = cmp.Or(o.ConsecutiveFailures, DefaultConsecutiveFailures)
	o.BaseEjection = cmp.Or(o.BaseEjection, Duration(DefaultBaseEjection))
	o.MaxEjection = cmp.Or(o.MaxEjection, max(Duration(DefaultMaxEjection), o.BaseEjection))
	o.MaxEjectionPercent = intOr(o.MaxEjectionPercent, DefaultMaxEjectionPercent)
}

func intOr(p *int, def int) *int {
	if p != nil {
		return p
	}
	return &def
}

// policy checks the failure policy of the target group at path p.
func (v *validator) policy(p string, g *TargetGroup) {
	for _, d := range []struct {
		name string
		v    Duration
	}{{"connect_timeout", g.ConnectTimeout}, {"response_timeout", g.ResponseTimeout}, {"idle_timeout", g.IdleTimeout}} {
		if d.v <= 0 {
			v.add(p+"."+d.name, "must be positive")
		}
	}
	percent := func(path string, n *int) {
		if n != nil && (*n < 0 || *n > 100) {
			v.add(path, "must be 0–100, not %d", *n)
		}
	}
	if g.Retries != nil && (*g.Retries < 0 || *g.Retries > 10) {
		v.add(p+".retries", "must be 0–10, not %d", *g.Retries)
	}
	percent(p+".panic_threshold", g.PanicThreshold)
	if g.MaxIdlePerTarget != nil && (*g.MaxIdlePerTarget < 0 || *g.MaxIdlePerTarget > 1024) {
		v.add(p+".max_idle_per_target", "must be 0–1024, not %d", *g.MaxIdlePerTarget)
	}
	if o := g.Outlier; o != nil {
		op := p + ".outlier"
		if o.ConsecutiveFailures < 1 {
			v.add(op+".consecutive_failures", "must be at least 1")
		}
		if o.BaseEjection <= 0 || o.MaxEjection < o.BaseEjection {
			v.add(op, "base_ejection must be positive and max_ejection at least base_ejection")
		}
		percent(op+".max_ejection_percent", o.MaxEjectionPercent)
	}
}
