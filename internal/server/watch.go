package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"time"

	"tlsgate/internal/certstore"
	"tlsgate/internal/config"
)

// watched is the config file and every file it references. After a failed reload the
// files of the new (broken) config are watched too, read back from the file itself.
func (s *Server) watched() []string {
	files := []string{s.opts.ConfigPath}
	if cfg, err := config.Load(s.opts.ConfigPath); err == nil {
		files = append(append(files, cfg.Includes...), certstore.Files(cfg)...)
	}
	if s.cfg != nil {
		files = append(append(files, s.cfg.Includes...), certstore.Files(s.cfg)...)
	}
	return files
}

// stampFiles returns a content hash per file ("" for a file that cannot be read).
func stampFiles(files []string) map[string]string {
	st := make(map[string]string, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			st[f] = ""
			continue
		}
		st[f] = stamp(b)
	}
	return st
}

// stamp is the content hash stampFiles records for a file holding data.
func stamp(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// Watch polls the watched files every interval of the running config and reloads when
// any changed, until ctx ends. Polling (not inotify) sees atomic renames and Kubernetes
// symlink swaps alike.
func (s *Server) Watch(ctx context.Context) {
	for {
		s.mu.Lock()
		interval := time.Duration(s.cfg.Watch)
		s.mu.Unlock()
		if interval < 0 {
			<-ctx.Done()
			return
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		s.mu.Lock()
		changed := false
		for f, sum := range stampFiles(s.watched()) {
			if s.stamps[f] != sum {
				changed = true
			}
		}
		s.updateExpiry()
		s.mu.Unlock()
		if changed {
			_ = s.Reload()
		}
	}
}
