package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"tlsgate/internal/config"
)

// TestSystemdUnit: the shipped unit is Type=notify with the directives the docs promise,
// and its command lines parse (no usage error) with this binary's flags.
func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile("../../contrib/systemd/tlsgate.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	for _, want := range []string{
		"Type=notify\n", "NotifyAccess=main\n", "ExecReload=/bin/kill -HUP $MAINPID\n", "WatchdogSec=",
		"NoNewPrivileges=yes\n", "ProtectSystem=strict\n", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n",
		"StateDirectory=tlsgate\n", "ReadWritePaths=/var/lib/tlsgate",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	// The service cannot write /etc/tlsgate (ProtectSystem=strict), where the CRL and OCSP
	// caches are kept beside the config: the unit makes exactly those writable, and its
	// install steps make them.
	cfg := config.Config{Dir: "/etc/tlsgate"}
	for _, cache := range []string{filepath.Dir(cfg.CRLCache("http://x/")), filepath.Dir(cfg.OCSPCache(nil))} {
		if !regexp.MustCompile(`(?m)^ReadWritePaths=.*-` + regexp.QuoteMeta(cache) + `( |$)`).MatchString(unit) {
			t.Errorf("unit does not make %s writable", cache)
		}
		if !regexp.MustCompile(`(?m)^#\s+install -d -o tlsgate .*` + regexp.QuoteMeta(cache) + `( |$)`).MatchString(unit) {
			t.Errorf("unit's install steps do not make %s", cache)
		}
	}
	for line := range strings.SplitSeq(unit, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok || (k != "ExecStart" && k != "ExecStartPre") {
			continue
		}
		args := strings.Fields(v)[1:] // after /usr/local/bin/tlsgate
		for i, a := range args {
			if strings.HasPrefix(a, "/etc/") {
				args[i] = t.TempDir() + "/missing.yaml" // parse the flags, fail on the file
			}
		}
		if code, _, errs := run(args...); code == ExitUsage {
			t.Errorf("%s: usage error: %s", line, errs)
		}
	}
}
