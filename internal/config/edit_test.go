package config_test

import (
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"tlsgate/internal/config"
)

const handKept = `# tlsgate at the edge — hand-kept, do not reflow
admin: {listen: 127.0.0.1:9900}   # loopback only
target_groups:
    # the web tier
    - id: web
      targets:
        - address: ${WEB_ADDR:-127.0.0.1:8080}   # primary
        - {address: 127.0.0.1:8081, weight: 0}  # draining
    - id: api   # api tier
      targets: [{address: 127.0.0.1:9000}]
listeners:
    - {id: tcp, protocol: tcp, listen: 127.0.0.1:0, target_group: web}
denylist:
    serials: [AA:BB, cc]   # two bad laptops
`

// TestEditKeepsTheFile: a change through Edit keeps comments, key order, indentation,
// ${VAR} references and flow styles, and writes no default in.
func TestEditKeepsTheFile(t *testing.T) {
	t.Parallel()
	env := envOf(nil)
	out, err := config.EditEnv([]byte(handKept), "x.yaml", env, func(c *config.Config) error {
		g := &c.TargetGroups[1]
		g.Targets = append(g.Targets, config.Target{Address: "127.0.0.1:9001"})
		c.Denylist.Serials = slices.DeleteFunc(c.Denylist.Serials, func(s string) bool { return s == "cc" })
		c.TargetGroups = slices.Insert(c.TargetGroups, 0, config.TargetGroup{ID: "new", Targets: []config.Target{{Address: "127.0.0.1:7000"}}})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := string(out)
	for _, want := range []string{
		"# tlsgate at the edge — hand-kept, do not reflow\n",
		"# loopback only",
		"    # the web tier\n",
		"- address: ${WEB_ADDR:-127.0.0.1:8080} # primary",
		"# draining",
		"- id: api # api tier",
		"serials: ['AA:BB'] # two bad laptops",
		"{address: '127.0.0.1:9001'}",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("edited file lost %q:\n%s", want, got)
		}
	}
	for _, unwanted := range []string{"scheduler", "watch_interval", "weight: 1", "handshake_timeout"} {
		if strings.Contains(got, unwanted) {
			t.Errorf("edited file gained %q (a default):\n%s", unwanted, got)
		}
	}
	if strings.Index(got, "admin:") > strings.Index(got, "target_groups:") || strings.Index(got, "id: new") > strings.Index(got, "id: web") {
		t.Errorf("key or item order changed:\n%s", got)
	}
	c, err := config.ParseEnv(out, "x.yaml", env)
	if err != nil {
		t.Fatalf("edited file does not load: %v\n%s", err, got)
	}
	if len(c.TargetGroups) != 3 || len(c.TargetGroups[2].Targets) != 2 || !slices.Equal(c.Denylist.Serials, []string{"AA:BB"}) {
		t.Fatalf("edit not applied: %+v", c)
	}
	same, err := config.EditEnv([]byte(handKept), "x.yaml", env, func(*config.Config) error { return nil })
	if err != nil || !strings.Contains(string(same), "targets: [{address: '127.0.0.1:9000'}]") {
		t.Fatalf("a no-op edit changed the file: %v\n%s", err, same)
	}
}

// TestEditIncluded: the main file gets new items; items of included files cannot be
// changed through Edit.
func TestEditIncluded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	main := write(t, dir, "tlsgate.yaml", "include: [groups.yaml]\n")
	write(t, dir, "groups.yaml", "target_groups:\n  - id: web\n    targets: [{address: 127.0.0.1:8080}]\n")
	data := []byte("include: [groups.yaml]\n")
	out, err := config.Edit(data, main, func(c *config.Config) error {
		c.TargetGroups = append(c.TargetGroups, config.TargetGroup{ID: "api", Targets: []config.Target{{Address: "127.0.0.1:9000"}}})
		return nil
	})
	if err != nil || strings.Contains(string(out), "web") || !strings.Contains(string(out), "id: api") {
		t.Fatalf("edit: %v\n%s", err, out)
	}
	_, err = config.Edit(data, main, func(c *config.Config) error {
		c.TargetGroups[0].Targets = nil
		return nil
	})
	if !errors.Is(err, config.ErrIncluded) || !strings.Contains(err.Error(), filepath.Join(dir, "groups.yaml")) {
		t.Fatalf("editing an included item: %v", err)
	}
}

// FuzzEditNoop: for any file that loads, an edit that changes nothing gives a file that
// loads to the same configuration (the node-tree rewrite loses nothing).
func FuzzEditNoop(f *testing.F) {
	f.Add([]byte(handKept))
	f.Add([]byte(tcpConfig))
	f.Fuzz(func(t *testing.T, data []byte) {
		env := envOf(map[string]string{"W": "2", "PORT": "9000"})
		before, err := config.ParseEnv(data, "x.yaml", env)
		if err != nil {
			return
		}
		out, err := config.EditEnv(data, "x.yaml", env, func(*config.Config) error { return nil })
		if err != nil {
			t.Fatalf("no-op edit: %v", err)
		}
		after, err := config.ParseEnv(out, "x.yaml", env)
		if err != nil {
			t.Fatalf("no-op edit gave a file that does not load: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(before.Listeners, after.Listeners) || !reflect.DeepEqual(before.TargetGroups, after.TargetGroups) || !reflect.DeepEqual(before.Denylist, after.Denylist) {
			t.Fatalf("no-op edit changed the configuration:\n%s", out)
		}
	})
}

// TestEditRoundTrip: an item read back with its defaults (as GET shows it) and sent
// again with one change gets only that change in the file; when leaving a default out
// would change what the loader makes of it, the value is written.
func TestEditRoundTrip(t *testing.T) {
	t.Parallel()
	const file = "certificates:\n  - {id: site, cert: s.crt, key: s.key}\ntarget_groups:\n  - {id: web, targets: [{address: 127.0.0.1:8080}]}\nlisteners:\n  - id: a   # the edge\n    protocol: https\n    listen: 127.0.0.1:0\n    target_group: web\n    ssl: {mode: one_way, server_certificates: [site]}\n"
	shown, err := config.Parse([]byte(file), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	put := func(change func(l *config.Listener)) string {
		t.Helper()
		l := shown.Listeners[0]
		ssl := *l.SSL
		l.SSL = &ssl
		change(&l)
		out, err := config.Edit([]byte(file), "x.yaml", func(c *config.Config) error { c.Listeners[0] = l; return nil })
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	out := put(func(l *config.Listener) { l.MaxConnections = 100 })
	if !strings.Contains(out, "max_connections: 100") || !strings.Contains(out, "# the edge") {
		t.Fatalf("change lost:\n%s", out)
	}
	for _, unwanted := range []string{"handshake_timeout", "forward_client_cert", "policy", "idle_timeout", "max_client_chain"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("the default %s was written in:\n%s", unwanted, out)
		}
	}
	// policy: tls12-modern is only the default without min_version; sent with one, it
	// must be written or the loader would drop it.
	out = put(func(l *config.Listener) { l.SSL.MinVersion = "1.3" })
	c, err := config.Parse([]byte(out), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Listeners[0].SSL; s.Policy != "tls12-modern" || s.MinVersion != "1.3" {
		t.Fatalf("loaded ssl %+v from:\n%s", s, out)
	}
}
