package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ErrIncluded is returned by Edit for a change to an item that an included file defines:
// the API edits the main file only.
var ErrIncluded = errors.New("defined in an included file; edit that file")

// Edit applies mutate to the configuration in data (the file as written: no defaults,
// includes merged, variables substituted) and returns the new file. The change is made
// in the file's YAML node tree, so the operator's comments, key order, quoting styles,
// ${VAR} references and include: survive; only the values that changed are written,
// and no default is written in. The result is not validated: Parse it.
func Edit(data []byte, file string, mutate func(*Config) error) ([]byte, error) {
	return EditEnv(data, file, os.LookupEnv, mutate)
}

// EditEnv is Edit with the environment variables looked up by env.
func EditEnv(data []byte, file string, env func(string) (string, bool), mutate func(*Config) error) ([]byte, error) {
	src, err := readSource(data, file, env)
	if err != nil {
		return nil, err
	}
	if len(src.problems) > 0 {
		return nil, src.problems
	}
	if src.root.Kind != yaml.MappingNode {
		return nil, Problems{{File: file, Msg: "the configuration is not a mapping"}}
	}
	var c, def Config
	if err := src.root.Decode(&c); err != nil {
		return nil, yamlProblems(err, file)
	}
	// def is the file as the loader sees it, defaults filled in: a value a client read
	// back (GET shows defaults) and sent again unchanged is not written into the file.
	if err := src.root.Decode(&def); err != nil {
		return nil, yamlProblems(err, file)
	}
	def.SetDefaults()
	if err := mutate(&c); err != nil {
		return nil, err
	}
	want, err := withDefaults(&c)
	if err != nil {
		return nil, err
	}
	out, err := encodeEdit(data, src, c, reflect.ValueOf(def))
	if err != nil {
		return nil, err
	}
	// Leaving a default out is right unless another field's change makes the loader fill
	// in something else (a policy is only defaulted without min_version): then write
	// every value the change carries.
	if got, err := loadedAs(out, file, env); err != nil || !reflect.DeepEqual(got, want) {
		return encodeEdit(data, src, c, reflect.Value{})
	}
	return out, nil
}

// encodeEdit patches the main file's tree to hold c and encodes it.
func encodeEdit(data []byte, src *source, c Config, def reflect.Value) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	ed := &editor{files: src.files}
	if err := ed.patch(doc.Content[0], src.root, reflect.ValueOf(c), def); err != nil {
		return nil, err
	}
	spellNulls(doc.Content[0], false)
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(indentOf(data))
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// withDefaults returns a copy of c with its defaults filled in.
func withDefaults(c *Config) (*Config, error) {
	b, err := yaml.Marshal(c)
	if err != nil {
		return nil, err
	}
	var d Config
	if err := yaml.Unmarshal(b, &d); err != nil {
		return nil, err
	}
	d.SetDefaults()
	return &d, nil
}

// loadedAs is the configuration data loads to (includes merged, defaults filled in),
// without validation.
func loadedAs(data []byte, file string, env func(string) (string, bool)) (*Config, error) {
	src, err := readSource(data, file, env)
	if err != nil {
		return nil, err
	}
	var c Config
	if err := src.root.Decode(&c); err != nil {
		return nil, err
	}
	return withDefaults(&c)
}

// editor patches the main file's tree (orig) to hold a new value, comparing against the
// same tree with includes merged and variables substituted (sub), which is what the
// value was decoded from.
type editor struct {
	files map[*yaml.Node]string
}

// patch makes orig hold v. orig and sub are the same node of the main file (sub with
// variables substituted); a node whose value did not change is left as it is. def is
// the value the loader makes of sub (defaults filled in), or invalid when none.
func (e *editor) patch(orig, sub *yaml.Node, v, def reflect.Value) error {
	if sub != nil && e.same(sub, v) {
		return nil
	}
	t := v.Type()
	for t.Kind() == reflect.Pointer {
		if v.IsNil() {
			return e.replace(orig, v)
		}
		v, t = v.Elem(), t.Elem()
		if def.IsValid() && !def.IsNil() {
			def = def.Elem()
		} else {
			def = reflect.Value{}
		}
	}
	switch {
	case t.Kind() == reflect.Struct && t != durationType && orig.Kind == yaml.MappingNode && sub != nil && sub.Kind == yaml.MappingNode:
		return e.mapping(orig, sub, v, def)
	case t.Kind() == reflect.Slice && orig.Kind == yaml.SequenceNode && sub != nil && sub.Kind == yaml.SequenceNode:
		return e.sequence(orig, sub, v, def)
	}
	return e.replace(orig, v)
}

// same reports whether node n decodes to v.
func (e *editor) same(n *yaml.Node, v reflect.Value) bool {
	got := reflect.New(v.Type())
	if n.Decode(got.Interface()) != nil {
		return false
	}
	return reflect.DeepEqual(got.Elem().Interface(), v.Interface())
}

// replace writes v over orig, keeping orig's comments and, for flow collections, the
// flow style.
func (e *editor) replace(orig *yaml.Node, v reflect.Value) error {
	n, err := encodeNode(v, orig.Style&yaml.FlowStyle != 0)
	if err != nil {
		return err
	}
	n.HeadComment, n.LineComment, n.FootComment = orig.HeadComment, orig.LineComment, orig.FootComment
	*orig = *n
	return nil
}

// mapping patches the fields of a struct: changed fields in place, new fields appended
// (in the struct's order), emptied fields removed.
func (e *editor) mapping(orig, sub *yaml.Node, v, def reflect.Value) error {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		fv := v.Field(i)
		var dv reflect.Value
		if def.IsValid() {
			dv = def.Field(i)
		}
		oi, si := keyIndex(orig, name), keyIndex(sub, name)
		var sv *yaml.Node
		if si >= 0 {
			sv = sub.Content[si+1]
		}
		switch {
		case oi >= 0 && fv.IsZero() && !(sv != nil && e.same(sv, fv)):
			orig.Content = append(orig.Content[:oi], orig.Content[oi+2:]...)
		case oi >= 0:
			if err := e.patch(orig.Content[oi+1], sv, fv, dv); err != nil {
				return err
			}
		case fv.IsZero(), dv.IsValid() && reflect.DeepEqual(fv.Interface(), dv.Interface()):
			// Not in the file and empty, or the default the loader fills in anyway.
		case sv != nil && sv.Kind == yaml.SequenceNode:
			// A list only included files give: the main file gets the new items.
			n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
			if err := e.patch(n, sv, fv, dv); err != nil {
				return err
			}
			if len(n.Content) > 0 {
				orig.Content = append(orig.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: name}, n)
			}
		default:
			n, err := encodeNode(fv, orig.Style&yaml.FlowStyle != 0)
			if err != nil {
				return err
			}
			orig.Content = append(orig.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: name}, n)
		}
	}
	return nil
}

// sequence patches a list. Items are matched by identity (id, address, or the value of
// a scalar), so deleting or adding one keeps the others' nodes and comments. Items of
// included files are matched too, but may not change: they are not written here.
func (e *editor) sequence(orig, sub *yaml.Node, v, def reflect.Value) error {
	used := make([]bool, len(sub.Content))
	var out []*yaml.Node
	for i := range v.Len() {
		ev := v.Index(i)
		j := e.match(sub, ev, used, i)
		if j < 0 {
			n, err := encodeNode(ev, orig.Style&yaml.FlowStyle != 0)
			if err != nil {
				return err
			}
			out = append(out, n)
			continue
		}
		used[j] = true
		if f, ok := e.files[sub.Content[j]]; ok {
			if !e.same(sub.Content[j], ev) {
				return fmt.Errorf("%s: %w", f, ErrIncluded)
			}
			continue
		}
		var dv reflect.Value
		if def.IsValid() && j < def.Len() {
			dv = def.Index(j) // decoded from the same list, so the same item
		}
		if err := e.patch(orig.Content[j], sub.Content[j], ev, dv); err != nil {
			return err
		}
		out = append(out, orig.Content[j])
	}
	for j, n := range sub.Content {
		if f, ok := e.files[n]; ok && !used[j] {
			return fmt.Errorf("%s: %w", f, ErrIncluded)
		}
	}
	orig.Content = out
	return nil
}

// match finds the unused item of sub that is the same item as ev: same identity, or
// for items without one, the same value, or else the one at the same index.
func (e *editor) match(sub *yaml.Node, ev reflect.Value, used []bool, i int) int {
	id := identity(ev)
	for j, n := range sub.Content {
		if used[j] {
			continue
		}
		if id != "" {
			if identityOf(n, ev.Type()) == id {
				return j
			}
		} else if e.same(n, ev) {
			return j
		}
	}
	if id == "" && i < len(sub.Content) && !used[i] && sub.Content[i].Kind != yaml.ScalarNode {
		return i
	}
	return -1
}

// identity is what names a list item: its id or address field.
func identity(v reflect.Value) string {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return ""
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return ""
	}
	for _, name := range []string{"ID", "Address"} {
		if f := v.FieldByName(name); f.IsValid() && f.Kind() == reflect.String && f.String() != "" {
			return name + "=" + f.String()
		}
	}
	return ""
}

// identityOf decodes node n as type t and returns its identity.
func identityOf(n *yaml.Node, t reflect.Type) string {
	p := reflect.New(t)
	if n.Decode(p.Interface()) != nil {
		return ""
	}
	return identity(p.Elem())
}

func keyIndex(m *yaml.Node, key string) int {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return i
		}
	}
	return -1
}

// encodeNode encodes v as a node; in a flow collection it is written in flow style too.
func encodeNode(v reflect.Value, flow bool) (*yaml.Node, error) {
	var n yaml.Node
	if err := n.Encode(v.Interface()); err != nil {
		return nil, err
	}
	if flow {
		setFlow(&n)
	}
	return &n, nil
}

func setFlow(n *yaml.Node) {
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		n.Style |= yaml.FlowStyle
	}
	for _, c := range n.Content {
		setFlow(c)
	}
}

// indentOf guesses the file's indentation (the smallest indentation of a line), so the
// rewritten file keeps it; 2 when the file has none.
func indentOf(data []byte) int {
	best := 0
	for line := range strings.SplitSeq(string(data), "\n") {
		trimmed := strings.TrimLeft(line, " ")
		n := len(line) - len(trimmed)
		if n > 0 && trimmed != "" && !strings.HasPrefix(trimmed, "#") && (best == 0 || n < best) {
			best = n
		}
	}
	if best < 2 || best > 8 {
		return 2
	}
	return best
}

// spellNulls writes an empty value in a flow collection ({weight}, [a, , b]) as null:
// the emitter would write it as a quoted empty string, which reads back as a string.
func spellNulls(n *yaml.Node, flow bool) {
	if n.Kind == yaml.ScalarNode && flow && n.Value == "" && n.ShortTag() == "!!null" {
		n.Value = "null"
	}
	flow = flow || n.Style&yaml.FlowStyle != 0
	for _, c := range n.Content {
		spellNulls(c, flow)
	}
}
