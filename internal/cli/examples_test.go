package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
)

// helpExamples walks the command tree through --help, as a user reads it, and returns
// every example command line: indented lines starting with "tlsgate " in a command's
// description or its Examples section (not its Usage line).
func helpExamples(t *testing.T) [][]string {
	t.Helper()
	var out [][]string
	seen := map[string]bool{}
	var walk func(path []string)
	walk = func(path []string) {
		code, help, stderr := run(append(append([]string{}, path...), "--help")...)
		if code != 0 {
			t.Fatalf("%v --help: exit %d: %s", path, code, stderr)
		}
		section := "description"
		for line := range strings.SplitSeq(help, "\n") {
			switch {
			case strings.HasSuffix(line, ":") && !strings.HasPrefix(line, " "):
				section = strings.TrimSuffix(line, ":")
			case section == "Available Commands" && strings.HasPrefix(line, "  "):
				if name := strings.Fields(line)[0]; name != "help" && name != "completion" {
					walk(append(append([]string{}, path...), name))
				}
			case (section == "description" || section == "Examples") && strings.HasPrefix(line, "  tlsgate "):
				if ex := strings.TrimSpace(line); !seen[ex] {
					seen[ex] = true
					out = append(out, splitWords(t, strings.TrimPrefix(ex, "tlsgate ")))
				}
			}
		}
	}
	walk(nil)
	return out
}

// splitWords splits a command line as a POSIX shell would for the quoting the examples
// use: words separated by spaces, "double" or 'single' quotes keep spaces.
func splitWords(t *testing.T, s string) []string {
	var words []string
	var b strings.Builder
	quote, in := rune(0), false
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			b.WriteRune(r)
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == ' ':
			if in {
				words = append(words, b.String())
				b.Reset()
				in = false
			}
		default:
			b.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		t.Fatalf("unbalanced quote in example %q", s)
	}
	if in {
		words = append(words, b.String())
	}
	return words
}

// TestHelpExamples: every example in --help parses as printed (flags and subcommands
// exist: cobra answers --help after parsing them), and the pki examples, which need no
// server, run as printed, in order, in an empty directory.
func TestHelpExamples(t *testing.T) {
	t.Chdir(t.TempDir())
	examples := helpExamples(t)
	if len(examples) < 5 {
		t.Fatalf("found %d examples: %v", len(examples), examples)
	}
	for _, ex := range examples {
		if code, _, stderr := run(append(append([]string{}, ex...), "--help")...); code != 0 {
			t.Errorf("tlsgate %s: does not parse: exit %d: %s", strings.Join(ex, " "), code, stderr)
		}
	}
	for _, ex := range examples {
		if ex[0] != "pki" {
			continue
		}
		if code, _, stderr := run(ex...); code != 0 {
			t.Errorf("tlsgate %s: exit %d: %s", strings.Join(ex, " "), code, stderr)
		}
	}
}

// readmeExamples returns the tlsgate command lines of README.md's sh blocks, as an
// operator copies them: without the trailing comment, a redirection, or an optional
// [--flag] in brackets.
func readmeExamples(t *testing.T) [][]string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	inSh := false
	for line := range strings.SplitSeq(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "```"):
			inSh = line == "```sh"
		case inSh && strings.HasPrefix(line, "tlsgate "):
			line, _, _ = strings.Cut(line, "  #")
			line, _, _ = strings.Cut(line, " >")
			var words []string
			for _, w := range splitWords(t, strings.TrimPrefix(strings.TrimSpace(line), "tlsgate ")) {
				if !strings.HasPrefix(w, "[") {
					words = append(words, w)
				}
			}
			out = append(out, words)
		}
	}
	return out
}

// TestReadmeExamples: every tlsgate command line in README.md's sh blocks parses (its
// subcommand and flags exist), and the certificate block runs as printed, in order, in
// an empty directory: the pki commands succeed, cert verify finds alice revoked (exit 1)
// and cert convert writes alice.p12.
func TestReadmeExamples(t *testing.T) {
	examples := readmeExamples(t)
	t.Chdir(t.TempDir())
	if len(examples) < 15 {
		t.Fatalf("found %d examples: %v", len(examples), examples)
	}
	for _, ex := range examples {
		if code, _, stderr := run(append(append([]string{}, ex...), "--help")...); code != 0 {
			t.Errorf("tlsgate %s: does not parse: exit %d: %s", strings.Join(ex, " "), code, stderr)
		}
	}
	for _, ex := range examples {
		want := ExitOK
		switch {
		case ex[0] == "cert" && ex[1] == "verify":
			want = ExitFailure
		case ex[0] != "pki" && ex[0] != "cert":
			continue
		}
		if code, stdout, stderr := run(ex...); code != want {
			t.Errorf("tlsgate %s: exit %d, want %d: %s%s", strings.Join(ex, " "), code, want, stdout, stderr)
		}
	}
	if _, err := os.Stat("alice.p12"); err != nil {
		t.Error(err)
	}
}

// readmeYAML returns the README.md yaml block that contains marker.
func readmeYAML(t *testing.T, readme, marker string) string {
	t.Helper()
	for _, b := range strings.Split(readme, "```yaml\n")[1:] {
		if b, _, _ = strings.Cut(b, "```"); strings.Contains(b, marker) {
			return b
		}
	}
	t.Fatalf("README.md has no yaml block with %q", marker)
	return ""
}

// TestReadmeConfigs: the README's configuration examples pass tlsgate check as printed,
// with the files they name made: the walkthrough as a whole, and the domains, target
// group, HTTP/2 group, log and admin examples together in one config (the fragments
// included through include:, the log file's directory moved beside the config), and the
// fleet's two node configs.
func TestReadmeConfigs(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "certs"), 0o700); err != nil {
		t.Fatal(err)
	}
	ca := pkitest.New(t, "readme ca", pki.ECDSAP256)
	ca.Issue("www.example.com", pkitest.Server("www.example.com")).WritePair(t, dir, "certs/server")
	ca.Issue("api.example.com", pkitest.Server("api.example.com", "*.api.example.com")).WritePair(t, dir, "certs/api")
	ca.Issue("origin").WritePair(t, dir, "certs/origin")
	pkitest.Write(t, dir, "certs/client-ca.crt", ca.PEM())
	pkitest.Write(t, dir, "certs/client-ca.crl", ca.CRL(24*time.Hour))
	pkitest.Write(t, dir, "admin.token", []byte("0123456789abcdef0123\n"))

	check := func(name, yaml string) {
		t.Helper()
		path := pkitest.Write(t, dir, name, []byte(yaml))
		if code, stdout, stderr := run("check", "--config", path); code != ExitOK {
			t.Errorf("check %s: exit %d: %s%s\n%s", name, code, stdout, stderr, yaml)
		}
	}
	check("walkthrough.yaml", readmeYAML(t, readme, "admin:\n  listen: 127.0.0.1:9900            # /healthz"))

	pkitest.Write(t, dir, "domains.yaml", []byte("listeners:\n"+readmeYAML(t, readme, "  - id: edge\n")))
	pkitest.Write(t, dir, "groups.yaml", []byte(readmeYAML(t, readme, "scheduler: least_conn")))
	pkitest.Write(t, dir, "h2.yaml", []byte(readmeYAML(t, readme, "id: payments")))
	logs := strings.ReplaceAll(readmeYAML(t, readme, "level: info          #"), "/var/log/tlsgate/", "")
	check("examples.yaml", `include: [groups.yaml, h2.yaml, domains.yaml]
certificates:
  - {id: site, cert: certs/server.crt, key: certs/server.key}
  - {id: api, cert: certs/api.crt, key: certs/api.key}
  - {id: clients, ca: certs/client-ca.crt, crl: [certs/client-ca.crl]}
  - {id: backend-ca, ca: certs/client-ca.crt}
  - {id: origin, cert: certs/origin.crt, key: certs/origin.key}
target_groups:
  - {id: web, targets: [{address: 127.0.0.1:8080}]}
  - {id: admin, targets: [{address: 127.0.0.1:8081}]}
  - {id: www, targets: [{address: 127.0.0.1:8082}]}
`+logs+readmeYAML(t, readme, "token_file: admin.token        #"))

	// The fleet's node configs, with the key file and token they name.
	pkitest.Write(t, dir, "fleet.key", make([]byte, 32))
	check("node-1.yaml", readmeYAML(t, readme, "# /etc/tlsgate/node.yaml on edge-1"))
	check("node-2.yaml", readmeYAML(t, readme, "# edge-2 (10.0.0.12)"))
}
