package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"tlsgate/internal/certstore"
	"tlsgate/internal/config"
)

// Config returns a fresh copy of the configuration on disk (what Update edits).
func (s *Server) Config() (*config.Config, error) {
	if s.opts.Fleet != nil {
		return s.opts.Fleet.Current()
	}
	return config.Load(s.opts.ConfigPath)
}

// Backups is how many earlier versions of the config file Update keeps, as FILE.1 (the
// newest) to FILE.5.
const Backups = 5

// Update applies a change to the configuration the way an operator's edit and a reload
// would, but atomically: mutate edits the configuration as the file holds it (no
// defaults); the change is made in the file's YAML tree (config.Edit: comments, key
// order, ${VAR} references survive), validated and built (certificates loaded, lint
// run) before anything changes; then the file is rewritten with its mode kept, the
// previous versions kept as FILE.1 … FILE.5, and swapped in without dropping open
// connections. On any error nothing changes. It returns the lint warnings.
func (s *Server) Update(mutate func(*config.Config) error) (config.Problems, error) {
	if s.opts.Fleet != nil {
		return s.updateFleet(mutate)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	path := s.opts.ConfigPath
	if _, err := config.Load(path); err != nil {
		return nil, fmt.Errorf("the config on disk does not load; fix it first: %w", err)
	}
	old, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	data, err := config.Edit(old, path, mutate)
	if err != nil {
		return nil, err
	}
	next, err := config.Parse(data, path)
	if err != nil {
		return nil, err
	}
	// Stamped before the build reads them, as in Reload; the config file as written below.
	stamps := stampFiles(append(append([]string{path}, certstore.Files(next)...), certstore.Files(s.cfg)...))
	b, err := buildConfig(next, s.opts.Now, s.store, s.keys)
	if err != nil {
		return nil, err
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := rotateBackups(path, old, info.Mode().Perm()); err != nil {
		return nil, fmt.Errorf("keeping a backup: %w", err)
	}
	if err := writeAtomic(path, data, info.Mode().Perm()); err != nil {
		return nil, err
	}
	stamps[path] = stamp(data)
	if err := s.apply(b, stamps); err != nil {
		return nil, errors.Join(err, writeAtomic(path, old, info.Mode().Perm()))
	}
	s.logWarnings(b.store.Warnings)
	s.opts.Log.Info("configuration updated through the admin API", "config", path)
	s.opts.Metrics.Reloads.WithLabelValues("success").Inc()
	s.opts.Metrics.Reloaded(true, time.Now())
	return b.store.Warnings, nil
}

// rotateBackups shifts FILE.1 … FILE.4 to FILE.2 … FILE.5 (dropping the oldest) and
// writes data, the version being replaced, as FILE.1, with the file's mode.
func rotateBackups(path string, data []byte, mode os.FileMode) error {
	for i := Backups - 1; i >= 1; i-- {
		err := os.Rename(fmt.Sprintf("%s.%d", path, i), fmt.Sprintf("%s.%d", path, i+1))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return writeAtomic(path+".1", data, mode)
}

// writeAtomic replaces path with data: a temporary file beside it with the given mode,
// then a rename.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
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
	if err := os.Chmod(f.Name(), mode); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// ConfigDir is the directory of the config file, where uploaded certificates go.
// In fleet mode it is the directory a fleet revision is decoded in (fleet.cache_dir):
// an upload is read from there into the next revision, then removed.
func (s *Server) ConfigDir() string {
	if s.opts.Fleet != nil {
		if cfg, err := s.opts.Fleet.Current(); err == nil {
			return cfg.Dir
		}
	}
	return filepath.Dir(s.opts.ConfigPath)
}
