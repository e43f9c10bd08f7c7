package metrics_test

import (
	"os/exec"
	"path/filepath"
	"testing"

	"tlsgate/internal/tooltest"
)

// TestAlertRulesPromtool runs `promtool check rules` on contrib's alert rules (Debian
// package prometheus). It skips where promtool is absent, except in CI.
func TestAlertRulesPromtool(t *testing.T) {
	promtool := tooltest.Path(t, "promtool")
	rules, err := filepath.Glob(filepath.Join("..", "..", "contrib", "prometheus", "*.yml"))
	if err != nil || len(rules) == 0 {
		t.Fatalf("no rule files in contrib/prometheus: %v", err)
	}
	out, err := exec.CommandContext(t.Context(), promtool, append([]string{"check", "rules"}, rules...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}
