package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"tlsgate/internal/certstore"
	"tlsgate/internal/config"
)

// Config returns a fresh copy of the configuration on disk (what Update edits).
func (s *Server) Config() (*config.Config, error) {
	return config.Load(s.opts.ConfigPath)
}

// Update applies a change to the configuration the way an operator's edit and a reload
// would, but atomically: mutate edits a fresh copy; the result is validated and built
// (certificates loaded, lint run) before anything changes; then the file is rewritten
// (the previous kept as FILE.bak) and swapped in without dropping open connections.
// On any error nothing changes. It returns the lint warnings of the new config.
func (s *Server) Update(mutate func(*config.Config) error) (config.Problems, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg, err := config.Load(s.opts.ConfigPath)
	if err != nil {
		return nil, fmt.Errorf("the config on disk does not load; fix it first: %w", err)
	}
	if err := mutate(cfg); err != nil {
		return nil, err
	}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	next, err := config.Parse(data, s.opts.ConfigPath)
	if err != nil {
		return nil, err
	}
	path := s.opts.ConfigPath
	// Stamped before the build reads them, as in Reload; the config file as written below.
	stamps := stampFiles(append(append([]string{path}, certstore.Files(next)...), certstore.Files(s.cfg)...))
	b, err := buildConfig(next, s.opts.Now, s.store, s.keys)
	if err != nil {
		return nil, err
	}
	old, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if err := writeAtomic(path+".bak", old); err != nil {
		return nil, fmt.Errorf("keeping a backup: %w", err)
	}
	if err := writeAtomic(path, data); err != nil {
		return nil, err
	}
	stamps[path] = stamp(data)
	if err := s.apply(b, stamps); err != nil {
		return nil, errors.Join(err, writeAtomic(path, old))
	}
	s.logWarnings(b.store.Warnings)
	s.opts.Log.Info("configuration updated through the admin API", "config", path)
	s.opts.Metrics.Reloads.WithLabelValues("success").Inc()
	return b.store.Warnings, nil
}

// writeAtomic replaces path with data: a temporary file beside it, then a rename.
func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o600); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// ConfigDir is the directory of the config file, where uploaded certificates go.
func (s *Server) ConfigDir() string { return filepath.Dir(s.opts.ConfigPath) }
