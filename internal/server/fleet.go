package server

import (
	"context"
	"errors"
	"time"

	"go.yaml.in/yaml/v3"

	"tlsgate/internal/config"
)

// Fleet is the fleet (package fleet) as the server sees it in fleet mode: the admin API
// edits the fleet's config, not a file, and every instance applies the change.
type Fleet interface {
	// Current is a fresh copy of the fleet's config as stored (no node changes), with
	// Revision set: the base of a compare-and-swap.
	Current() (*config.Config, error)
	// Prepare turns edited config YAML based on base into what this node would serve
	// (decoded, localized), reading newly referenced files (uploads) from the disk.
	Prepare(base *config.Config, data []byte) (*config.Config, error)
	// Write stores what Prepare made as the next revision if the fleet is still at
	// base's revision, then calls apply; the revision counts as this node's only when
	// apply succeeds. It returns the new revision.
	Write(ctx context.Context, prepared *config.Config, apply func() error) (int64, error)
	// FetchesCRLs reports whether this node fetches CRLs from their URLs for the fleet
	// (the elected node); the others take them from the fleet and fetch only a CRL they
	// have no copy of.
	FetchesCRLs() bool
	// PublishCRL shares a CRL this node fetched from url with the other nodes.
	PublishCRL(url string, data []byte)
}

// Apply builds cfg (a fleet revision) and swaps it in as a reload does; on any error
// the running configuration keeps serving and the error is returned.
func (s *Server) Apply(cfg *config.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := buildConfig(cfg, s.opts.Now, s.store, s.keys)
	if err == nil {
		err = s.apply(b, s.stamps)
	}
	s.reloaded(b, err, "fleet_revision", cfg.Revision)
	return err
}

// rebuild is Reload when the configuration did not come from ConfigPath (fleet mode):
// the running configuration is built again, so fetched CRLs and OCSP staples are read
// anew. (Reading ConfigPath, a node config, would serve no listener at all.)
func (s *Server) rebuild() error {
	s.mu.Lock()
	cfg := s.cfg
	s.mu.Unlock()
	return s.Apply(cfg)
}

// fleetWriteTimeout bounds an admin API write to etcd.
const fleetWriteTimeout = 10 * time.Second

// updateFleet is Update in fleet mode: edit the fleet's config, build it here (so a
// change that does not load is refused before anything is stored), store it in etcd
// with compare-and-swap, then swap it in; the other instances apply it from their watch.
//
// A compare-and-swap lost to a change made elsewhere meanwhile is retried on the newer
// revision (mutate runs again), a few times.
func (s *Server) updateFleet(mutate func(*config.Config) error) (config.Problems, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range fleetRetries - 1 {
		ws, err := s.updateFleetOnce(mutate)
		if c, ok := errors.AsType[conflict](err); !ok || !c.Conflict() {
			return ws, err
		}
	}
	return s.updateFleetOnce(mutate)
}

// conflict is an error of a compare-and-swap that lost (fleet.ConflictError).
type conflict interface {
	error
	Conflict() bool
}

// fleetRetries is how many times an admin API change is tried against a moving fleet.
const fleetRetries = 5

func (s *Server) updateFleetOnce(mutate func(*config.Config) error) (config.Problems, error) {
	f := s.opts.Fleet
	cur, err := f.Current()
	if err != nil {
		return nil, err
	}
	if err := mutate(cur); err != nil {
		return nil, err
	}
	data, err := yaml.Marshal(cur)
	if err != nil {
		return nil, err
	}
	next, err := f.Prepare(cur, data)
	if err != nil {
		return nil, err
	}
	b, err := buildConfig(next, s.opts.Now, s.store, s.keys)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), fleetWriteTimeout)
	defer cancel()
	rev, err := f.Write(ctx, next, func() error { return s.apply(b, s.stamps) })
	if err != nil {
		return nil, err
	}
	s.logWarnings(b.store.Warnings)
	s.opts.Log.Info("configuration updated through the admin API", "fleet_revision", rev)
	s.opts.Metrics.Reloads.WithLabelValues("success").Inc()
	return b.store.Warnings, nil
}
