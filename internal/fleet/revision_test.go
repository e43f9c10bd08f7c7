package fleet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tlsgate/internal/config"
)

// TestLocalizeTokenBesideNodeConfig: a node started as `serve --config node.yaml` from
// its directory names admin.token_file relative to node.yaml; the localized revision
// (decoded as if it lived in the cache directory) must read the node's token, not look
// for it in the cache.
func TestLocalizeTokenBesideNodeConfig(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.WriteFile("token", []byte("s3cret-token-of-the-node\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	node, err := config.Parse([]byte(`admin: {listen: 127.0.0.1:0, token_file: token}
fleet: {etcd: [127.0.0.1:2379], prefix: /tlsgate/t, key_file: fleet.key, cache_dir: cache}
`), "node.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := &Revision{Number: 1, Config: []byte("listeners: []\n"), Files: map[string][]byte{}}
	cfg, err := r.Decode("cache")
	if err != nil {
		t.Fatal(err)
	}
	Localize(cfg, node)
	got, err := cfg.ReadSecret(cfg.Admin.TokenFile)
	if err != nil || got != "s3cret-token-of-the-node" {
		t.Fatalf("admin token of the localized revision: %q, %v (want the node's %s)", got, err, filepath.Join(dir, "token"))
	}
	// A problem in the node's admin section names the node config and its line, not the
	// revision decoded in the cache.
	if p := cfg.Problem("admin.listen", "x").String(); p != "node.yaml:1: admin.listen: x" {
		t.Errorf("problem in the admin section: %q, want node.yaml:1", p)
	}
	if p := cfg.Problem("listeners", "x").String(); !strings.HasPrefix(p, filepath.Join("cache", ConfigName)+":") {
		t.Errorf("problem in the revision: %q, want it at the revision", p)
	}
}
