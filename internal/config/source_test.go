package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tlsgate/internal/config"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func write(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const tcpConfig = `target_groups:
  - id: web
    targets:
      - address: ${BACKEND:-127.0.0.1:8080}
        weight: ${W}
listeners:
  - {id: a, protocol: tcp, listen: "127.0.0.1:${PORT}", target_group: web}
`

// TestSubstitution: ${VAR} and ${VAR:-default} in values, typed by their new text; an
// unset variable is a problem at its line; $${ is a literal; a value cannot add YAML.
func TestSubstitution(t *testing.T) {
	t.Parallel()
	c, err := config.ParseEnv([]byte(tcpConfig), "x.yaml", envOf(map[string]string{"PORT": "9000", "W": "7"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listeners[0].Listen != "127.0.0.1:9000" || c.TargetGroups[0].Targets[0].Address != "127.0.0.1:8080" || *c.TargetGroups[0].Targets[0].Weight != 7 {
		t.Fatalf("substituted: %+v %+v", c.Listeners[0], c.TargetGroups[0].Targets[0])
	}
	_, err = config.ParseEnv([]byte(tcpConfig), "x.yaml", envOf(map[string]string{"W": "heavy"}))
	want := "x.yaml:5: target_groups[0].targets[0].weight: must be a whole number, not \"heavy\"\n" +
		"x.yaml:7: listeners[0].listen: environment variable PORT is not set (write ${PORT:-default} for a default)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error:\n%v\nwant:\n%s", err, want)
	}
	c, err = config.ParseEnv([]byte("admin: {listen: \"127.0.0.1:0\", token_file: \"$${HOME}/${T}\"}\n"), "x.yaml",
		envOf(map[string]string{"T": "t\nlisteners: [x]"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Admin.TokenFile != "${HOME}/t\nlisteners: [x]" || len(c.Listeners) != 0 {
		t.Fatalf("token_file = %q, listeners %v", c.Admin.TokenFile, c.Listeners)
	}
}

// TestSubstitutionQuoted: in flow style a ${VAR} must be quoted (its braces are flow
// indicators), and a value that is one quoted reference is typed by its new text as a
// plain one is: weight: "${W}" with W=7 is the number 7 (it was refused: must be a whole
// number, not "7"). Text around a reference, or a value that is not a number or a
// boolean (null), stays a string.
func TestSubstitutionQuoted(t *testing.T) {
	t.Parallel()
	const cfg = `certificates:
  - {id: p, cert: p.p12, password: "${PW}"}
target_groups:
  - id: web
    targets: [{address: "${ADDR}", weight: "${W}"}, {address: 127.0.0.1:8081, weight: '${W2:-3}'}]
listeners:
  - {id: a, protocol: tcp, listen: "127.0.0.1:${PORT}", target_group: web, max_connections: "1${PORT}"}
`
	_, err := config.ParseEnv([]byte(cfg), "x.yaml", envOf(map[string]string{"W": "7", "PW": "null", "ADDR": "127.0.0.1:8080", "PORT": "9000"}))
	if err == nil || !strings.Contains(err.Error(), `x.yaml:7: listeners[0].max_connections: must be a whole number, not "19000"`) {
		t.Fatalf("text around a quoted reference: %v", err)
	}
	c, err := config.ParseEnv([]byte(strings.Replace(cfg, `, max_connections: "1${PORT}"`, "", 1)), "x.yaml",
		envOf(map[string]string{"W": "7", "PW": "null", "ADDR": "127.0.0.1:8080", "PORT": "9000"}))
	if err != nil {
		t.Fatal(err)
	}
	ts := c.TargetGroups[0].Targets
	if *ts[0].Weight != 7 || *ts[1].Weight != 3 || ts[0].Address != "127.0.0.1:8080" || c.Certificates[0].Password != "null" || c.Listeners[0].Listen != "127.0.0.1:9000" {
		t.Fatalf("substituted: %+v %+v %q %q", ts[0], ts[1], c.Certificates[0].Password, c.Listeners[0].Listen)
	}
}

// TestInclude: listeners, target groups and certificates from globbed files are added;
// problems in an included file name that file and its line.
func TestInclude(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	main := write(t, dir, "tlsgate.yaml", "include: [groups.yaml, \"listeners.d/*.yaml\"]\nlisteners:\n  - {id: a, protocol: tcp, listen: 127.0.0.1:0, target_group: web}\n")
	write(t, dir, "groups.yaml", "target_groups:\n  - id: web\n    targets: [{address: 127.0.0.1:8080}]\n")
	write(t, dir, "listeners.d/b.yaml", "listeners:\n  - {id: b, protocol: tcp, listen: 127.0.0.1:0, target_group: web}\n")
	c, err := config.Load(main)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Listeners) != 2 || c.Listeners[1].ID != "b" || len(c.TargetGroups) != 1 || len(c.Includes) != 2 {
		t.Fatalf("merged: %+v, includes %v", c, c.Includes)
	}
	bad := write(t, dir, "listeners.d/c.yaml", "# c\nlisteners:\n  - id: c\n    protocol: tcp\n    colour: blue\n    listen: 127.0.0.1:0\n    target_group: nowhere\nadmin: {}\n")
	write(t, dir, "broken.yaml", "include: [nope.yaml]\n")
	_, err = config.Load(main)
	ps, ok := errors.AsType[config.Problems](err)
	if !ok {
		t.Fatal(err)
	}
	got := ps.Error()
	for _, want := range []string{
		bad + ":8: admin: only certificates, target_groups and listeners may be included",
		bad + ":5: listeners[2].colour: unknown field",
		bad + ":7: listeners[2].target_group: unknown target group \"nowhere\"",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems:\n%s\nwant %s", got, want)
		}
	}
	_, err = config.Load(filepath.Join(dir, "broken.yaml"))
	if err == nil || !strings.Contains(err.Error(), "broken.yaml:1: include[0]: open "+filepath.Join(dir, "nope.yaml")) {
		t.Fatalf("missing include: %v", err)
	}
}

// TestPasswordFile: the secret is read from the file, one trailing newline dropped;
// password and password_file together are a problem.
func TestPasswordFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, dir, "p12.password", "s3cret \n")
	main := write(t, dir, "tlsgate.yaml", "certificates:\n  - {id: s, cert: s.p12, password_file: p12.password}\n")
	c, err := config.Load(main)
	if err != nil {
		t.Fatal(err)
	}
	if pw, err := c.Password(&c.Certificates[0]); err != nil || pw != "s3cret " {
		t.Fatalf("password %q, %v", pw, err)
	}
	_, err = config.Parse([]byte("certificates:\n  - {id: s, cert: s.p12, password: x, password_file: p}\n"), "x.yaml")
	if err == nil || !strings.Contains(err.Error(), "x.yaml:2: certificates[0].password_file: set password or password_file, not both") {
		t.Fatal(err)
	}
}
