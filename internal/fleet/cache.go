package fleet

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// cacheFile is the last applied revision on the node, as stored in etcd (sealed): a node
// restarted while etcd is down serves it, and no key is in clear on the disk.
const cacheFile = "revision.json"

type cached struct {
	Revision int64             `json:"revision"`
	Values   map[string][]byte `json:"values"` // sealed, by name under the prefix
}

// writeCache replaces the cache with revision n: a 0600 file beside it, then a rename.
func writeCache(dir string, n int64, sealed map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("fleet cache: %w", err)
	}
	data, err := json.Marshal(cached{Revision: n, Values: sealed})
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, cacheFile), data)
}

// writeFileAtomic replaces path with data (0600): a temporary file beside it, then a rename.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("fleet cache: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("fleet cache: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("fleet cache: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("fleet cache: %w", err)
	}
	return os.Rename(f.Name(), path)
}

// readCache opens the cached revision.
func readCache(dir string, k *Keys) (*Revision, map[string][]byte, error) {
	data, err := os.ReadFile(filepath.Join(dir, cacheFile))
	if err != nil {
		return nil, nil, fmt.Errorf("fleet cache: %w", err)
	}
	var c cached
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, nil, fmt.Errorf("fleet cache %s: %w", filepath.Join(dir, cacheFile), err)
	}
	r, err := Open(k, c.Revision, c.Values)
	return r, c.Values, err
}
