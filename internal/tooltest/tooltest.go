// Package tooltest finds the external programs tests cross-check against (openssl,
// curl, nginx, HAProxy, etcd, chromium, promtool): where one is missing a test skips,
// but under CI=true it fails, since .ci/run installs them all and a CI run must not pass
// with a cross-check skipped. Standard library only; imported only from tests.
package tooltest

import (
	"os"
	"os/exec"
	"testing"
)

// Path returns name's path on PATH; without it the test skips (fails under CI=true).
func Path(tb testing.TB, name string) string {
	tb.Helper()
	p := Optional(tb, name)
	if p == "" {
		tb.Skipf("%s not on PATH", name)
	}
	return p
}

// Optional returns name's path on PATH, or "" where it is missing, for a test that
// cross-checks with it only when it can; under CI=true a missing name fails the test.
func Optional(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("%s not on PATH: CI (.ci/run) installs it", name)
		}
		return ""
	}
	return p
}
