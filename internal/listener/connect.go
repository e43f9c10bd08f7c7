package listener

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"tlsgate/internal/backend"
)

// connect opens a TCP relay's backend connection to t, TLS included when the group
// re-encrypts, within the group's connect_timeout. A failed connect goes to another
// target of the group, up to its retries (HAProxy's retries with redispatch); each
// outcome is reported to the group for outlier ejection. It sets the line's target
// and upstream connect time; release ends the work counted on the targets.
func (l *Listener) connect(g *backend.Group, t *backend.Target, line *Line) (net.Conn, func(), error) {
	var releases []func()
	release := func() {
		for _, r := range releases {
			r()
		}
	}
	tried := []*backend.Target{t}
	for retries := 0; ; retries++ {
		line.Target = t.Address
		releases = append(releases, t.Acquire())
		start := time.Now()
		c, err := l.dialTarget(g, t)
		line.UpstreamConnect = time.Since(start)
		if err == nil {
			g.Report(t, nil)
			return c, release, nil
		}
		if l.ctx.Err() != nil {
			return nil, release, err // shutting down: nobody's fault
		}
		g.Report(t, err)
		if retries >= g.Policy.Retries {
			return nil, release, err
		}
		if t = g.Retry(line.Client, tried); t == nil {
			return nil, release, err
		}
		tried = append(tried, t)
	}
}

// dialTarget connects to t and, with re-encryption, runs the TLS handshake.
func (l *Listener) dialTarget(g *backend.Group, t *backend.Target) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(l.ctx, g.Policy.ConnectTimeout)
	defer cancel()
	c, err := l.deps.Dial(ctx, "tcp", t.Address)
	if err != nil || t.TLS == nil {
		return c, err
	}
	tc := tls.Client(c, t.TLS)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("TLS to backend %s: %w", t.Address, err)
	}
	return tc, nil
}
