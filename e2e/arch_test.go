package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestImportRules enforces the layering of DEVELOPING.md: the import graph is the data
// flow, leaves import no siblings, and test helpers stay in tests.
func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}:{{join .Imports \" \"}}", "../...").Output()
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string][]string{
		"config":     {},
		"certfile":   {},
		"revocation": {},
		"clientauth": {"revocation", "certfile"},
		"metrics":    {},
		"backend":    {"config"},
		"tcpproxy":   {"clientauth", "rawsock"},
		"h2proxy":    {"httpproxy"},
		"pki":        {"certfile"},
		"sdnotify":   {},
		// Upgrade opens the sockets it does not inherit with listensock's options.
		"upgrade": {"listensock"},
		// The runtime view reads the data path's types; the console reads only the view.
		"status":   {"backend", "certstore", "clientauth", "config", "listener", "revocation"},
		"admin/ui": {"status"},
		// Fleet mode hands revisions to the server through an interface; it never imports it.
		"fleet": {"config", "metrics", "ticketkeys"},
		// The OpenSSL signer is a leaf: certstore wraps the keys it loads with it.
		"opensslsign": {},
		// The HTTP/1 fast-path parser is a leaf under listener and httpproxy.
		"h1parse": {},
		// The raw socket reads and writes are a leaf under listener and httpproxy.
		"rawsock": {},
		// The lazy deadlines' clock and rule are a leaf under listener and httpproxy.
		"lazytime": {},
		// Listening sockets' options are a leaf under upgrade and server.
		"listensock": {},
		// The dead-address test helper is a leaf, so any package's tests can use it.
		"porttest": {},
		// The external-tool lookup for tests is a leaf, for the same reason.
		"tooltest": {},
	}
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, ":")
		name := strings.TrimPrefix(pkg, "tlsgate/internal/")
		for imp := range strings.FieldsSeq(imports) {
			dep, ok := strings.CutPrefix(imp, "tlsgate/internal/")
			if !ok {
				continue
			}
			if dep == "cli" && pkg != "tlsgate/cmd/tlsgate" {
				t.Errorf("%s imports cli: only main may", pkg)
			}
			// Test helpers (pkitest, proxytest, etcdtest, porttest, tooltest: named …test) may build on each other.
			if (dep == "pkitest" || dep == "proxytest" || dep == "etcdtest" || dep == "porttest" || dep == "tooltest") && !strings.HasSuffix(name, "test") {
				t.Errorf("%s imports %s outside tests", pkg, dep)
			}
			if allow, ok := allowed[name]; ok && !slices.Contains(allow, dep) {
				t.Errorf("%s imports %s; allowed: %v", name, dep, allow)
			}
		}
	}
}

// TestNoExitInInternal: only main exits; internal packages return errors (or abort a
// response with http.ErrAbortHandler).
func TestNoExitInInternal(t *testing.T) {
	bad := regexp.MustCompile(`\bos\.Exit\(|\blog\.Fatal|\bpanic\(`)
	err := filepath.WalkDir("../internal", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, l := range strings.Split(string(b), "\n") {
			// panic(http.ErrAbortHandler) is net/http's way to abort a response; the
			// servers (net/http's and the HTTP/1 loop) recover it, nothing exits.
			if bad.MatchString(l) && !strings.HasPrefix(strings.TrimSpace(l), "//") && !strings.Contains(l, "panic(http.ErrAbortHandler)") {
				t.Errorf("%s:%d: %s", path, i+1, strings.TrimSpace(l))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
