package fleet

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"tlsgate/internal/config"
)

// Revision is one stored configuration: its YAML and every file it references, in clear
// (only ever in memory; Seal before storing).
type Revision struct {
	// Number is the revision (1, 2, …); 0 before it is stored.
	Number int64
	// Config is the YAML as the operator wrote it.
	Config []byte
	// Files maps each path as written in the config to the file's content.
	Files map[string][]byte
}

// ConfigName is the file name a revision's config is given when decoded (problems
// name it, and relative paths resolve beside it).
const ConfigName = "config.yaml"

// Bundle reads the config at path and every file it references into a Revision. It
// does not validate: the caller runs the same check as `tlsgate check` first.
func Bundle(path string) (*Revision, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	cfg, err := config.Parse(data, path)
	if err != nil {
		return nil, err
	}
	if cfg.Fleet != nil {
		return nil, fmt.Errorf("%s is a node config (it has fleet:); push the fleet's config (listeners, certificates, target_groups)", path)
	}
	r := &Revision{Config: data, Files: map[string][]byte{}}
	if len(cfg.Includes) > 0 || bytes.Contains(data, []byte("${")) {
		// Included files and ${VAR} are resolved here, as check saw them: every node
		// serves the same config whatever its own files and environment.
		if r.Config, err = flatten(cfg); err != nil {
			return nil, err
		}
	}
	for _, p := range referenced(cfg) {
		b, err := os.ReadFile(cfg.Resolve(p))
		if err != nil {
			return nil, err
		}
		r.Files[p] = b
	}
	return r, nil
}

// flatten writes cfg (includes merged, variables substituted) back as YAML.
func flatten(cfg *config.Config) ([]byte, error) {
	c := *cfg
	c.Include = nil
	return yaml.Marshal(&c)
}

// referenced lists the files a config names, as written in it.
func referenced(cfg *config.Config) []string {
	var fs []string
	for _, c := range cfg.Certificates {
		for _, f := range append([]string{c.Cert, c.Key, c.CA, c.PasswordFile}, c.CRL...) {
			if f != "" && !slices.Contains(fs, f) {
				fs = append(fs, f)
			}
		}
	}
	return fs
}

// Decode parses the revision's config as if it were the file dir/config.yaml, reading
// the files it references from the revision (never from the disk). Fetched CRL caches
// are the exception: they live on the node, under dir.
func (r *Revision) Decode(dir string) (*config.Config, error) {
	cfg, err := config.Parse(r.Config, filepath.Join(dir, ConfigName))
	if err != nil {
		return nil, err
	}
	if cfg.Fleet != nil {
		return nil, fmt.Errorf("revision %d holds a node config (fleet:)", r.Number)
	}
	files := map[string][]byte{}
	for p, b := range r.Files {
		files[cfg.Resolve(p)] = b
	}
	crlCache := filepath.Join(cfg.Dir, ".tlsgate-crl-cache") + string(filepath.Separator)
	cfg.Source = func(path string) ([]byte, error) {
		if b, ok := files[path]; ok {
			return b, nil
		}
		if strings.HasPrefix(path, crlCache) {
			return os.ReadFile(path)
		}
		return nil, &os.PathError{Op: "open", Path: path, Err: fmt.Errorf("not in fleet revision %d", r.Number)}
	}
	cfg.Revision = r.Number
	return cfg, nil
}

// Localize turns a fleet config into this node's: the node's admin section, and every
// listener bound to bind (when set) on its own port.
func Localize(cfg *config.Config, node *config.Config) {
	cfg.AdoptAdmin(node)
	if tok := node.Resolve(cfg.Admin.TokenFile); tok != "" {
		// The admin token is the node's own file, read from its disk. Made absolute:
		// beside a node config given by a relative path it is still relative here, and
		// cfg would resolve it against its own directory (the cache), not the node's.
		if abs, err := filepath.Abs(tok); err == nil {
			tok = abs
		}
		cfg.Admin.TokenFile = tok
		if src := cfg.Source; src != nil {
			cfg.Source = func(path string) ([]byte, error) {
				if path == tok {
					return os.ReadFile(path)
				}
				return src(path)
			}
		}
	}
	if node.Fleet == nil || node.Fleet.Bind == "" {
		return
	}
	for i := range cfg.Listeners {
		l := &cfg.Listeners[i]
		if _, port, err := net.SplitHostPort(l.Listen); err == nil {
			l.Listen = net.JoinHostPort(node.Fleet.Bind, port)
		}
	}
}
