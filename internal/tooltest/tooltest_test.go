package tooltest_test

import (
	"strings"
	"testing"

	"tlsgate/internal/proxytest"
	"tlsgate/internal/tooltest"
)

const missing = "tlsgate-no-such-tool"

// TestMissingToolFailsUnderCI: under CI=true a missing tool fails the test, through
// Path and Optional alike; it never skips there.
func TestMissingToolFailsUnderCI(t *testing.T) {
	t.Setenv("CI", "true")
	for name, f := range map[string]func(testing.TB){
		"Path":     func(tb testing.TB) { tooltest.Path(tb, missing) },
		"Optional": func(tb testing.TB) { tooltest.Optional(tb, missing) },
	} {
		if msg := proxytest.CatchFatal(t, f); !strings.Contains(msg, missing+" not on PATH: CI") {
			t.Errorf("%s under CI: %q, want a failure naming the tool", name, msg)
		}
	}
}

// TestMissingToolSkipsLocally: without CI, Path skips and Optional returns "".
func TestMissingToolSkipsLocally(t *testing.T) {
	t.Setenv("CI", "")
	if msg := proxytest.CatchFatal(t, func(tb testing.TB) { tooltest.Path(tb, missing) }); !strings.HasPrefix(msg, "skipped: ") {
		t.Errorf("Path: %q, want a skip", msg)
	}
	if p := tooltest.Optional(t, missing); p != "" {
		t.Errorf("Optional = %q, want \"\"", p)
	}
	if p := tooltest.Path(t, "sh"); !strings.HasSuffix(p, "/sh") {
		t.Errorf("Path(sh) = %q", p)
	}
}
