package fleet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"tlsgate/internal/config"
)

// prepared is a change the admin API made, between Prepare and Write.
type prepared struct {
	cfg     *config.Config
	rev     *Revision
	base    int64
	uploads []string // files read from the disk (uploaded), removed once stored
}

// Prepare turns the admin API's edit of the fleet config (data, based on base, which
// Current returned) into what this node would serve. Files the config names that the
// base revision has are taken from it; new ones (certificate uploads, written under the
// cache directory) are read from the disk, and removed once Write has stored them sealed.
func (n *Node) Prepare(base *config.Config, data []byte) (*config.Config, error) {
	cfg, err := config.Parse(data, filepath.Join(n.cache, ConfigName))
	if err != nil {
		return nil, err
	}
	p := &prepared{rev: &Revision{Number: base.Revision, Config: data, Files: map[string][]byte{}}, base: base.Revision}
	for _, f := range referenced(cfg) {
		if base.Source != nil {
			if b, err := base.ReadFile(base.Resolve(f)); err == nil {
				p.rev.Files[f] = b
				continue
			}
		}
		b, err := os.ReadFile(cfg.Resolve(f))
		if err != nil {
			return nil, err
		}
		p.rev.Files[f], p.uploads = b, append(p.uploads, cfg.Resolve(f))
	}
	if p.cfg, err = n.localize(p.rev); err != nil {
		return nil, err
	}
	n.mu.Lock()
	n.prepared = p
	n.mu.Unlock()
	return p.cfg, nil
}

// Write stores what Prepare made as the next revision when the fleet is still at its
// base revision (compare-and-swap: a concurrent change elsewhere makes it fail with
// ErrConflict, and nothing is stored), then calls apply to swap it in here. The
// revision becomes this node's current one only when apply succeeds; when it fails
// (a listener address in use here) the revision stays stored, the other instances
// apply it, and this node keeps serving its previous one and reports the error in
// status, as for a pushed revision it cannot apply.
func (n *Node) Write(ctx context.Context, cfg *config.Config, apply func() error) (int64, error) {
	n.mu.Lock()
	p := n.prepared
	n.prepared = nil
	if p != nil && p.cfg == cfg {
		// The session leaves this revision to Write while it is being written.
		n.writing = p.base + 1
	}
	n.mu.Unlock()
	if p == nil || p.cfg != cfg {
		return 0, errors.New("fleet write without its Prepare")
	}
	defer func() {
		n.mu.Lock()
		n.writing = 0
		n.mu.Unlock()
		select {
		case n.wake <- struct{}{}:
		default:
		}
	}()
	num, err := n.store.Push(ctx, p.rev, p.base)
	if err != nil {
		return 0, err
	}
	for _, f := range p.uploads {
		if err := os.Remove(f); err != nil {
			n.log.Warn("fleet: cannot remove an uploaded file after storing it", "file", f, "error", err.Error())
		}
	}
	if err := apply(); err != nil {
		return num, fmt.Errorf("stored as fleet revision %d (the other instances apply it), not applied here: %w", num, err)
	}
	p.rev.Number = num
	n.setCurrent(p.rev, n.store.seal(num, p.rev))
	return num, nil
}

// seal returns the sealed values of revision n by name under the prefix.
func (s *Store) seal(n int64, r *Revision) map[string][]byte {
	out := map[string][]byte{}
	name := revPrefix(n) + "config"
	out[name] = s.Keys.Seal(name, r.Config)
	for p, b := range r.Files {
		name := revPrefix(n) + "files/" + p
		out[name] = s.Keys.Seal(name, b)
	}
	return out
}
