package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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
func Parse(data []byte, file string) (*Config, error) {
	c, schema, err := decode(data, file)
	if err != nil {
		return nil, err
	}
	c.File, c.Dir = file, filepath.Dir(file)
	c.SetDefaults()
	c.lines = lineIndex(data)
	ps := slices.Clone(schema)
	for _, p := range c.Validate() {
		// A value the schema refused was left empty; what Validate says about it is noise.
		if !slices.ContainsFunc(schema, func(s Problem) bool { return within(p.Path, s.Path) }) {
			ps = append(ps, c.Problem(p.Path, p.Msg))
		}
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return c, nil
}

// within reports whether path is base or below it.
func within(path, base string) bool {
	return path == base || strings.HasPrefix(path, base+".") || strings.HasPrefix(path, base+"[")
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// decode parses data, checks it against the schema (schemaProblems: unknown fields and
// wrong shapes, which do not stop decoding) and decodes what it can. The error is for
// input that is not YAML at all.
func decode(data []byte, file string) (*Config, Problems, error) {
	var root yaml.Node
	err := yaml.Unmarshal(data, &root)
	if err == nil && len(root.Content) == 0 {
		return nil, nil, Problems{{File: file, Msg: "empty configuration"}}
	}
	if err != nil {
		return nil, nil, yamlProblems(err, file)
	}
	schema := schemaProblems(root.Content[0], file)
	if root.Content[0].Kind != yaml.MappingNode {
		return nil, nil, schema
	}
	var c Config
	if len(schema) > 0 {
		// The walk emptied every value it refused and every unknown key: what is left
		// decodes, so the rest of the file is validated too.
		if err := root.Content[0].Decode(&c); err != nil {
			return nil, nil, append(schema, yamlProblems(err, file)...)
		}
		return &c, schema, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, yamlProblems(err, file)
	}
	return &c, nil, nil
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

// index maps a problem path ("listeners[0].ssl.mode") to its line in the file.
type index map[string]int

func lineIndex(data []byte) index {
	var root yaml.Node
	idx := index{}
	if yaml.Unmarshal(data, &root) != nil || len(root.Content) == 0 {
		return idx
	}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		idx[path] = n.Line
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				walk(v, p)
				idx[p] = k.Line
			}
		case yaml.SequenceNode:
			for i, v := range n.Content {
				walk(v, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	walk(root.Content[0], "")
	return idx
}

// lookup returns the line of path or of its nearest ancestor present in the file.
func (idx index) lookup(path string) int {
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
	return Problem{File: c.File, Line: c.lines.lookup(path), Path: path, Msg: msg}
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

// Resolve makes a path from the config relative to the config file's directory.
func (c *Config) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.Dir, p)
}
