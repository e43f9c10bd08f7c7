package config_test

import (
	"errors"
	"strings"
	"testing"

	"tlsgate/internal/config"
)

func TestFleetNodeConfig(t *testing.T) {
	ok := `admin: {listen: "127.0.0.1:9901"}
fleet:
  etcd: [127.0.0.1:2379]
  prefix: /tlsgate/edge
  key_file: fleet.key
  bind: 127.0.0.2
`
	cfg, err := config.Parse([]byte(ok), "node.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Fleet.Instance == "" || cfg.Fleet.CacheDir != config.DefaultFleetCacheDir {
		t.Errorf("defaults: instance %q, cache_dir %q", cfg.Fleet.Instance, cfg.Fleet.CacheDir)
	}
	mixed := `fleet:
  etcd: [127.0.0.1]
  prefix: tlsgate/
  bind: nowhere
certificates:
  - {id: site, cert: a.crt, key: a.key}
target_groups:
  - {id: web, targets: [{address: 127.0.0.1:9}]}
listeners:
  - {id: web, protocol: tcp, listen: 127.0.0.1:0, target_group: web}
`
	_, err = config.Parse([]byte(mixed), "node.yaml")
	ps, isProblems := errors.AsType[config.Problems](err)
	if !isProblems {
		t.Fatalf("mixed node config: %v", err)
	}
	got := ps.Error()
	for _, want := range []string{
		"node.yaml:9: listeners: a node config with fleet:",
		"node.yaml:5: certificates: a node config with fleet:",
		"node.yaml:7: target_groups: a node config with fleet:",
		"node.yaml:2: fleet.etcd[0]:",
		"node.yaml:3: fleet.prefix:",
		"node.yaml:4: fleet.bind:",
		"fleet.key_file: required",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
}
