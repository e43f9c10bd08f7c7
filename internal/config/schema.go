package config

import (
	"encoding"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// schemaProblems walks the YAML node tree against the yaml tags of the Config structs and
// returns every unknown field and every value of the wrong shape, with its path and line,
// in file order. The decoder's own errors cannot do this: KnownFields stops being
// reported per path, its messages name Go types ("into config.Listener"), and a type
// error hides the problems after it. Walking the tree ourselves keeps one strict decoder
// (no UnmarshalYAML on mappings, STYLE §9.2) and still reports everything at once.
func schemaProblems(src *source, file string) Problems {
	w := &schemaWalk{file: file, files: src.files}
	w.value(src.root, reflect.TypeFor[Config](), "")
	return w.ps
}

type schemaWalk struct {
	file  string                // the file of the node being walked
	files map[*yaml.Node]string // items from included files
	ps    Problems
}

// add reports a problem at n and empties n, so that decoding the rest of the tree goes
// on (an empty value decodes to the field's zero value).
func (w *schemaWalk) add(n *yaml.Node, path, format string, args ...any) {
	w.ps = append(w.ps, Problem{File: w.file, Line: n.Line, Path: path, Msg: fmt.Sprintf(format, args...)})
	*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
}

var (
	durationType  = reflect.TypeFor[Duration]()
	textUnmarshal = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// value checks node n against type t at path.
func (w *schemaWalk) value(n *yaml.Node, t reflect.Type, path string) {
	if f, ok := w.files[n]; ok {
		defer func(main string) { w.file = main }(w.file)
		w.file = f
	}
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // an empty value leaves the field at its zero value
	}
	switch {
	case t == durationType:
		w.duration(n, path)
	case t.Kind() == reflect.Struct:
		w.mapping(n, t, path)
	case t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8:
		if n.Kind != yaml.SequenceNode {
			w.add(n, path, "must be a list (- item, or [a, b]), not %s", shape(n))
			return
		}
		for i, c := range n.Content {
			w.value(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.add(n, path, "must be a mapping (key: value), not %s", shape(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			w.value(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value))
		}
	default:
		w.scalar(n, t, path)
	}
}

// mapping checks a struct's fields: unknown keys are problems, known ones are walked.
func (w *schemaWalk) mapping(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.MappingNode {
		what := "a mapping (key: value)"
		if path == "" {
			what = "a mapping of sections (admin:, certificates:, listeners:, …)"
		}
		w.add(n, path, "must be %s, not %s", what, shape(n))
		return
	}
	fields := yamlFields(t)
	kept := n.Content[:0:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value == "<<" { // a merge key: its mappings hold fields of this same struct
			for _, m := range mergeSources(v) {
				w.mapping(m, t, path)
			}
			kept = append(kept, k, v)
			continue
		}
		p := join(path, k.Value)
		ft, ok := fields[k.Value]
		if !ok {
			msg := "unknown field"
			if s := suggest(k.Value, slices.Sorted(maps.Keys(fields))); s != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", s)
			}
			w.ps = append(w.ps, Problem{File: w.file, Line: k.Line, Path: p, Msg: msg})
			continue // dropped, so the rest decodes
		}
		w.value(v, ft, p)
		kept = append(kept, k, v)
	}
	n.Content = kept
}

func mergeSources(v *yaml.Node) []*yaml.Node {
	for v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	if v.Kind != yaml.SequenceNode {
		return []*yaml.Node{v}
	}
	var out []*yaml.Node
	for _, c := range v.Content {
		out = append(out, mergeSources(c)...)
	}
	return out
}

// scalar checks that n decodes into a value of type t, with a message naming the
// expected value rather than the Go type.
func (w *schemaWalk) scalar(n *yaml.Node, t reflect.Type, path string) {
	want := expected(t)
	if n.Kind != yaml.ScalarNode {
		w.add(n, path, "must be %s, not %s", want, shape(n))
		return
	}
	if reflect.PointerTo(t).Implements(textUnmarshal) || t.Kind() == reflect.String {
		return
	}
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		w.add(n, path, "must be %s, not %q", want, n.Value)
	}
}

// duration checks a Go duration string.
func (w *schemaWalk) duration(n *yaml.Node, path string) {
	if n.Kind != yaml.ScalarNode {
		w.add(n, path, "must be a duration (500ms, 5s, 1m), not %s", shape(n))
		return
	}
	if _, err := time.ParseDuration(n.Value); err != nil {
		w.add(n, path, "must be a duration (500ms, 5s, 1m), not %q", n.Value)
	}
}

// expected names the kind of value a field of type t takes, in the user's words.
func expected(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number, 0 or more"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "a single value"
}

// shape describes what a node is, for "must be X, not Y".
func shape(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q", n.Value)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// yamlFields maps the yaml keys of struct t to their field types, following inline
// fields; fields tagged "-" are not part of the schema.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			maps.Copy(out, yamlFields(ft))
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// suggest returns the known field closest to a misspelt one, or "" when none is close.
func suggest(got string, known []string) string {
	best, bestD := "", min(3, len(got)/2+1)
	for _, k := range known {
		if d := editDistance(got, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		for _, k := range known { // "cert" for "certificate_file"-like stems
			if len(got) >= 3 && (strings.HasPrefix(k, got) || strings.HasPrefix(got, k)) {
				return k
			}
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
