package config

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	File string
	Line int
	Path string
	Msg  string
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	if p.Path != "" {
		b.WriteString(": " + p.Path)
	}
	b.WriteString(": " + p.Msg)
	return b.String()
}

// Problems is every problem found in one configuration; it is an error.
type Problems []Problem

func (ps Problems) Error() string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, "\n")
}

// Load reads, decodes, defaults and validates the config file at path. The error is a
// Problems value when the file was read but is not a valid configuration.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(data, path)
}

// Parse decodes, defaults and validates data read from file (used for problem reports
// and for resolving relative paths). Unknown fields and values of the wrong shape are
// problems like any other: validation goes on, so one run reports every problem.
// ${VAR} and ${VAR:-default} are taken from the process environment.
func Parse(data []byte, file string) (*Config, error) {
	return ParseEnv(data, file, os.LookupEnv)
}

// ParseEnv is Parse with the environment variables looked up by env.
func ParseEnv(data []byte, file string, env func(string) (string, bool)) (*Config, error) {
	c, err := parse(data, file, env)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// LoadPartial is Load that, when the file decodes but has problems, also returns the
// config as decoded (a field with a problem left at its zero value) beside them, so
// that the files it names can be checked in the same run.
func LoadPartial(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return parse(data, path, os.LookupEnv)
}

// parse is ParseEnv returning the decoded config with its problems.
func parse(data []byte, file string, env func(string) (string, bool)) (*Config, error) {
	c, schema, err := decode(data, file, env)
	if err != nil {
		return nil, err
	}
	c.SetDefaults()
	ps := slices.Clone(schema)
	for _, p := range c.Validate() {
		// A value the schema refused was left empty; what Validate says about it is noise.
		if !slices.ContainsFunc(schema, func(s Problem) bool { return within(p.Path, s.Path) }) {
			ps = append(ps, c.Problem(p.Path, p.Msg))
		}
	}
	if len(ps) > 0 {
		return c, ps
	}
	return c, nil
}

// within reports whether path is base or below it.
func within(path, base string) bool {
	return path == base || strings.HasPrefix(path, base+".") || strings.HasPrefix(path, base+"[")
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// decode reads the source (includes merged, variables substituted), checks it against
// the schema (schemaProblems: unknown fields and wrong shapes, which do not stop
// decoding) and decodes what is left. The error is for input that cannot be read as a
// configuration at all.
func decode(data []byte, file string, env func(string) (string, bool)) (*Config, Problems, error) {
	src, err := readSource(data, file, env)
	if err != nil {
		return nil, nil, err
	}
	schema := append(src.problems, schemaProblems(src, file)...)
	slices.SortStableFunc(schema, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
	})
	if src.root.Kind != yaml.MappingNode {
		return nil, nil, schema
	}
	// The walk dropped every unknown key and emptied every value it refused, so what is
	// left decodes; KnownFields is not needed (and would not see the included files).
	var c Config
	if err := src.root.Decode(&c); err != nil {
		return nil, nil, append(schema, yamlProblems(err, file)...)
	}
	c.File, c.Dir = file, filepath.Dir(file)
	c.Includes = src.includes
	c.lines = lineIndex(src, file)
	return &c, schema, nil
}

// yamlProblems turns a decoder error into problems with lines.
func yamlProblems(err error, file string) Problems {
	var msgs []string
	if te, ok := errors.AsType[*yaml.TypeError](err); ok {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	ps := make(Problems, 0, len(msgs))
	for _, m := range msgs {
		p := Problem{File: file, Msg: m}
		if sm := yamlLine.FindStringSubmatch(m); sm != nil {
			p.Line, _ = strconv.Atoi(sm[1])
			p.Msg = sm[2]
		}
		ps = append(ps, p)
	}
	return ps
}

// index maps a problem path ("listeners[0].ssl.mode") to its file and line.
type index map[string]pos

type pos struct {
	file string
	line int
}

func lineIndex(src *source, file string) index {
	idx := index{}
	var walk func(n *yaml.Node, path, file string)
	walk = func(n *yaml.Node, path, file string) {
		if f, ok := src.files[n]; ok {
			file = f
		}
		idx[path] = pos{file, n.Line}
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := join(path, k.Value)
				walk(v, p, file)
				idx[p] = pos{file, k.Line}
			}
		case yaml.SequenceNode:
			for i, v := range n.Content {
				walk(v, fmt.Sprintf("%s[%d]", path, i), file)
			}
		}
	}
	walk(src.root, "", file)
	return idx
}

// lookup returns the position of path or of its nearest ancestor present in the file.
func (idx index) lookup(path string) pos {
	for path != "" {
		if l, ok := idx[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return idx[""]
}

// Problem is a problem at path (as Validate writes paths) of this config, with the
// file and line filled in; packages that load what the config names report through it.
func (c *Config) Problem(path, msg string) Problem {
	p := c.lines.lookup(path)
	return Problem{File: cmp.Or(p.file, c.File), Line: p.line, Path: path, Msg: msg}
}

// AdoptAdmin gives c the admin section of node (a fleet node's own, in the fleet's
// revision), and problems in it are reported at node's file and lines.
func (c *Config) AdoptAdmin(node *Config) {
	c.Admin = node.Admin
	if c.lines == nil {
		c.lines = index{}
	}
	for p := range c.lines {
		if p == "admin" || strings.HasPrefix(p, "admin.") {
			delete(c.lines, p)
		}
	}
	for p, l := range node.lines {
		if p == "admin" || strings.HasPrefix(p, "admin.") {
			c.lines[p] = pos{cmp.Or(l.file, node.File), l.line}
		}
	}
}

// CRLCache is where the CRL fetched from url is kept: a file named by the URL's hash in
// .tlsgate-crl-cache beside the config, so the last good CRL survives restarts.
func (c *Config) CRLCache(url string) string {
	sum := sha256.Sum256([]byte(url))
	return filepath.Join(c.Dir, ".tlsgate-crl-cache", hex.EncodeToString(sum[:12])+".crl")
}

// OCSPCache is where the stapled OCSP response of a certificate (by its DER) is kept.
func (c *Config) OCSPCache(leafDER []byte) string {
	sum := sha256.Sum256(leafDER)
	return filepath.Join(c.Dir, ".tlsgate-ocsp-cache", hex.EncodeToString(sum[:12])+".der")
}

// ReadFile reads a file the config references (resolved with Resolve): from Source when
// set, else from the disk.
func (c *Config) ReadFile(path string) ([]byte, error) {
	if c.Source != nil {
		return c.Source(path)
	}
	return os.ReadFile(path)
}

// Resolve makes a path from the config relative to the config file's directory.
func (c *Config) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.Dir, p)
}
