package server

import (
	"time"

	"tlsgate/internal/backend"
)

// adoptHealth gives the targets of b's groups the health of the same targets (group
// id and address) in the running configuration: what active checks found and
// outlier detection decided survives a reload or an admin API change, where it used to
// start over (a target the checks had marked down got half the requests again). New
// targets start healthy. It also logs ejections.
func (s *Server) adoptHealth(b *built) {
	for id, g := range b.groups {
		g.Adopt(s.groups[id])
		g.OnEject = func(t *backend.Target, d time.Duration) {
			s.opts.Log.Warn("target ejected", "group", g.ID, "target", t.Address, "duration", d.String(),
				"why", "consecutive connect failures or timeouts (outlier)")
		}
	}
}

// upValue is the backend-up gauge's value for t's active health.
func upValue(t *backend.Target) float64 {
	if t.Healthy() {
		return 1
	}
	return 0
}
