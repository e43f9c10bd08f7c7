package backend

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Checker runs active health checks on a group's targets: every Interval each target
// is probed; Fall consecutive failures mark it unhealthy, Rise consecutive successes
// healthy again.
type Checker struct {
	Group    *Group
	Interval time.Duration
	Timeout  time.Duration
	Rise     int
	Fall     int
	// Probe checks one address; see Probe.
	Probe func(ctx context.Context, addr string) error
	// OnChange is called when a target changes state (for logs and metrics).
	OnChange func(t *Target, healthy bool, err error)
}

// Run checks until ctx ends. The counts of successes and failures in a row live in the
// targets' state, so a checker started by a reload goes on where the previous one was
// (no target flaps because its counts began again).
func (c *Checker) Run(ctx context.Context) {
	for {
		var mu sync.Mutex
		results := map[*Target]error{}
		var wg sync.WaitGroup
		for _, t := range c.Group.Targets {
			wg.Go(func() {
				pctx, cancel := context.WithTimeout(ctx, c.Timeout)
				err := c.Probe(pctx, t.Address)
				cancel()
				mu.Lock()
				results[t] = err
				mu.Unlock()
			})
		}
		wg.Wait()
		for _, t := range c.Group.Targets {
			if ctx.Err() != nil {
				return // replaced: the next checker counts from here
			}
			if Exhausted(results[t]) {
				continue // our own shortage, not the target's health: not counted
			}
			c.record(t, results[t])
		}
		timer := time.NewTimer(c.Interval)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}

// record counts one check of t and changes its state at the thresholds.
func (c *Checker) record(t *Target, err error) {
	s := t.st
	s.mu.Lock()
	if err == nil {
		s.rise, s.fall = s.rise+1, 0
	} else {
		s.rise, s.fall = 0, s.fall+1
	}
	up := !t.Healthy() && err == nil && s.rise >= c.Rise
	down := t.Healthy() && err != nil && s.fall >= c.Fall
	s.mu.Unlock()
	switch {
	case up:
		c.set(t, true, nil)
	case down:
		c.set(t, false, err)
	}
}

func (c *Checker) set(t *Target, healthy bool, err error) {
	t.SetHealthy(healthy)
	if c.OnChange != nil {
		c.OnChange(t, healthy, err)
	}
}

// ProbeSpec says how to probe a target.
type ProbeSpec struct {
	Protocol string // tcp, http, https or grpc
	Host     string // Host header; default the target address
	Path     string // default /
	Expect   []int  // accepted status codes; default 200–399
	Service  string // the service a grpc check asks about (health_grpc.go)
	// TLS is the group's re-encryption config (tls: in the target group), or nil. With
	// it, https checks handshake as requests do: they present its client certificate
	// (a backend that requires one would otherwise refuse every check and be marked
	// down, apisix#12641) and verify the backend as it (server name, else the target's
	// host). Without it, https checks test liveness only and verify nothing.
	TLS *tls.Config
}

// Probe returns the probe function for spec.
func Probe(spec ProbeSpec) func(ctx context.Context, addr string) error {
	if spec.Protocol == "grpc" {
		return probeGRPC(spec)
	}
	if spec.Protocol == "tcp" || spec.Protocol == "" {
		return func(ctx context.Context, addr string) error {
			c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			if err == nil {
				c.Close()
			}
			return err
		}
	}
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // liveness only, see ProbeSpec.TLS
		DisableKeepAlives: true,
	}
	if spec.TLS != nil {
		tr.TLSClientConfig = spec.TLS.Clone() // no ServerName: the transport takes the target's host
	}
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	path := spec.Path
	if path == "" {
		path = "/"
	}
	return func(ctx context.Context, addr string) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, spec.Protocol+"://"+addr+path, nil)
		if err != nil {
			return err
		}
		if spec.Host != "" {
			req.Host = spec.Host
		}
		req.Header.Set("User-Agent", "tlsgate-health-check")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if len(spec.Expect) > 0 && !slices.Contains(spec.Expect, resp.StatusCode) ||
			len(spec.Expect) == 0 && (resp.StatusCode < 200 || resp.StatusCode > 399) {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
}
