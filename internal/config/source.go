package config

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// source is the node tree of a config file with its includes merged in and environment
// variables substituted: what the schema walk, the decoder and the line index read.
type source struct {
	root *yaml.Node // the document's top mapping
	// files names the included file of every list item that came from one; items of
	// the main file are not in it. Problems below such an item name that file.
	files map[*yaml.Node]string
	// includes are the included files, resolved (watched for changes like the config).
	includes []string
	problems Problems
}

// includable are the top-level lists an included file may hold.
var includable = []string{"certificates", "target_groups", "listeners"}

// readSource parses data (the config file file) and merges its includes. The error is
// for input that is not YAML at all.
func readSource(data []byte, file string, env func(string) (string, bool)) (*source, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlProblems(err, file)
	}
	if len(doc.Content) == 0 {
		return nil, Problems{{File: file, Msg: "empty configuration"}}
	}
	s := &source{root: doc.Content[0], files: map[*yaml.Node]string{}}
	if s.root.Kind == yaml.MappingNode {
		if inc := mapValue(s.root, "include"); inc != nil {
			s.include(inc, file, env)
		}
	}
	s.substitute(s.root, "", file, env)
	return s, nil
}

// include merges the files named by the include list (globs, relative to the config
// file's directory) into the main tree: their certificates, target_groups and listeners
// are appended to the main file's, in the order the patterns and the sorted glob
// matches give.
func (s *source) include(inc *yaml.Node, file string, env func(string) (string, bool)) {
	if inc.Kind != yaml.SequenceNode {
		return // the schema walk reports it
	}
	dir := filepath.Dir(file)
	for i, pn := range inc.Content {
		path := fmt.Sprintf("include[%d]", i)
		if pn.Kind != yaml.ScalarNode {
			continue
		}
		pattern := s.expand(pn, path, file, env)
		if !filepath.IsAbs(pattern) {
			pattern = filepath.Join(dir, pattern)
		}
		matches := []string{pattern}
		if strings.ContainsAny(pattern, "*?[") {
			var err error
			if matches, err = filepath.Glob(pattern); err != nil {
				s.add(file, pn.Line, path, "%q is not a valid glob: %v", pn.Value, err)
				continue
			}
		}
		for _, m := range matches {
			s.merge(m, file, pn.Line, path, env)
		}
	}
}

// merge appends the lists of one included file to the main tree.
func (s *source) merge(inc, file string, line int, path string, env func(string) (string, bool)) {
	// Only regular files: a device or FIFO (a glob over /dev, /dev/zero) would block
	// the read forever, and so every reload.
	if fi, err := os.Stat(inc); err == nil && !fi.Mode().IsRegular() {
		s.add(file, line, path, "%s is not a regular file", inc)
		return
	}
	data, err := os.ReadFile(inc)
	if err != nil {
		s.add(file, line, path, "%v", err)
		return
	}
	s.includes = append(s.includes, inc)
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		s.problems = append(s.problems, yamlProblems(err, inc)...)
		return
	}
	if len(doc.Content) == 0 {
		return
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		s.add(inc, top.Line, "", "an included file is a mapping of certificates:, target_groups: and listeners:")
		return
	}
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		switch {
		case !slices.Contains(includable, k.Value):
			s.add(inc, k.Line, k.Value, "only certificates, target_groups and listeners may be included")
		case v.Kind != yaml.SequenceNode:
			s.add(inc, v.Line, k.Value, "must be a list (- item, or [a, b])")
		default:
			list := mapValue(s.root, k.Value)
			if list == nil || list.Kind != yaml.SequenceNode {
				list = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
				s.root.Content = append(s.root.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k.Value}, list)
			}
			for _, item := range v.Content {
				s.files[item] = inc
				list.Content = append(list.Content, item)
			}
		}
	}
}

func (s *source) add(file string, line int, path, format string, args ...any) {
	s.problems = append(s.problems, Problem{File: file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// mapValue returns the value of key in mapping m, or nil.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

var envRef = regexp.MustCompile(`\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// substitute replaces ${VAR} and ${VAR:-default} in every scalar value below n (keys
// are left alone); "$${" is a literal "${". Values are substituted in the tree, not in
// the text, so a variable cannot add YAML structure (an injected "\n  admin:" stays a
// string). A plain scalar that changed is typed again by its new text, so
// "weight: ${W}" with W=3 is a number.
func (s *source) substitute(n *yaml.Node, path, file string, env func(string) (string, bool)) {
	if f, ok := s.files[n]; ok {
		file = f
	}
	switch n.Kind {
	case yaml.ScalarNode:
		s.expand(n, path, file, env)
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			s.substitute(n.Content[i+1], join(path, n.Content[i].Value), file, env)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			s.substitute(c, fmt.Sprintf("%s[%d]", path, i), file, env)
		}
	}
}

// expand substitutes one scalar in place and returns its new value.
func (s *source) expand(n *yaml.Node, path, file string, env func(string) (string, bool)) string {
	if !strings.Contains(n.Value, "${") {
		return n.Value
	}
	out := envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
		if ref == "$${" {
			return "${"
		}
		m := envRef.FindStringSubmatch(ref)
		v, ok := env(m[1])
		switch {
		case ok && v != "":
			return v
		case m[2] != "":
			return m[3]
		case ok:
			return v
		}
		s.add(file, n.Line, path, "environment variable %s is not set (write ${%s:-default} for a default)", m[1], m[1])
		return ""
	})
	if out != n.Value {
		whole := n.Style != 0 && wholeRef(n.Value)
		n.Value = out
		if n.Style == 0 {
			n.Tag = "" // typed again from the new text
		} else if whole && typedPlain(out) {
			// "${W}" alone, quoted because flow style ({…}, […]) must quote it: typed
			// as if plain, so weight: "${W}" with W=3 is a number as weight: ${W} is.
			// Only numbers and booleans: a quoted "${PW}" with PW=null stays "null".
			n.Tag, n.Style = "", 0
		}
	}
	return out
}

// wholeRef says whether v is exactly one ${VAR} or ${VAR:-default} reference.
func wholeRef(v string) bool {
	m := envRef.FindStringSubmatch(v)
	return m != nil && m[0] == v && m[1] != ""
}

// typedPlain says whether v, as a plain scalar, is a number or a boolean.
func typedPlain(v string) bool {
	n := yaml.Node{Kind: yaml.ScalarNode, Value: v}
	switch n.ShortTag() {
	case "!!int", "!!float", "!!bool":
		return true
	}
	return false
}

// ReadSecret returns the secret in the file at path (relative to the config file): a
// PKCS#12 password, a token, an etcd password. One trailing newline is dropped, so
// `echo secret > file` works; other whitespace is kept. Every secret file of the config
// is read through here, so they behave alike.
func (c *Config) ReadSecret(path string) (string, error) {
	b, err := c.ReadFile(c.Resolve(path))
	if err != nil {
		return "", err
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// Password returns the PKCS#12 password of a certificate entry: password, or the
// content of password_file.
func (c *Config) Password(ce *Certificate) (string, error) {
	if ce.PasswordFile == "" {
		return ce.Password, nil
	}
	return c.ReadSecret(ce.PasswordFile)
}
