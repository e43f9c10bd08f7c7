package config_test

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tlsgate/internal/config"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestCheckGolden compares the problems of each testdata config with its golden file.
func TestCheckGolden(t *testing.T) {
	for _, name := range []string{"bad", "unknown", "schema"} {
		t.Run(name, func(t *testing.T) {
			_, err := config.Load(filepath.Join("testdata", name+".yaml"))
			ps, ok := errors.AsType[config.Problems](err)
			if !ok {
				t.Fatalf("Load error %v is not config.Problems", err)
			}
			got := ps.Error() + "\n"
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Fatalf("problems:\n%s\nwant (%s):\n%s", got, golden, want)
			}
		})
	}
}

// TestGoodConfigDefaults checks defaults and path resolution of a valid config.
func TestGoodConfigDefaults(t *testing.T) {
	c, err := config.Load(filepath.Join("testdata", "good.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Watch != config.Duration(2*time.Second) {
		t.Errorf("watch = %v", c.Watch)
	}
	ca := c.Certificates[1]
	if ca.CRLPolicy != config.CRLFailClosed {
		t.Errorf("crl_policy default = %q, want fail_closed", ca.CRLPolicy)
	}
	if w := *c.TargetGroups[0].Targets[0].Weight; w != 1 {
		t.Errorf("default weight = %d", w)
	}
	if w := *c.TargetGroups[0].Targets[1].Weight; w != 0 {
		t.Errorf("explicit weight 0 became %d", w)
	}
	l := c.Listeners[0]
	if l.SSL.Policy != "tls12-modern" || l.ForwardClientCert != config.ForwardHeaders || l.HandshakeTimeout != config.Duration(10*time.Second) {
		t.Errorf("listener defaults: %+v", l)
	}
	if got := c.Resolve("certs/server.crt"); got != filepath.Join("testdata", "certs", "server.crt") {
		t.Errorf("relative path resolved to %q", got)
	}
	if got := c.Resolve(ca.CA); got != "/etc/tlsgate/ca.crt" {
		t.Errorf("absolute path resolved to %q", got)
	}
}

func TestEmptyAndMalformed(t *testing.T) {
	for _, tc := range []struct{ name, data, want string }{
		{"empty", "", "x.yaml: empty configuration"},
		{"not a mapping", "- a\n- b\n", "x.yaml:1: must be a mapping of sections"},
		{"bad duration", "watch_interval: soon\n", "x.yaml:1: "},
		{"tab indentation", "admin:\n\tlisten: x\n", "x.yaml:2: found character that cannot start any token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tc.data), "x.yaml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// FuzzParse: no input makes the decoder panic, and any accepted config validates again
// without problems.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"good", "bad", "unknown", "schema"} {
		b, err := os.ReadFile(filepath.Join("testdata", name+".yaml"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse(data, "fuzz.yaml")
		if err != nil {
			// Messages speak of fields and values, never of Go types.
			if m := err.Error(); strings.Contains(m, "config.") || strings.Contains(m, "into ") {
				t.Fatalf("problem names a Go type: %s", m)
			}
			return
		}
		if ps := c.Validate(); len(ps) > 0 {
			t.Fatalf("accepted config has problems: %v", ps)
		}
	})
}

// TestAdminExposure: the management API is never served to the network without a token.
func TestAdminExposure(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		ok   bool
	}{
		{"admin: {listen: 127.0.0.1:9900}\n", true},
		{"admin: {listen: '[::1]:9900'}\n", true},
		{"admin: {listen: 0.0.0.0:9900}\n", false},
		{"admin: {listen: 0.0.0.0:9900, token_file: t}\n", true},
	} {
		_, err := config.Parse([]byte(tc.yaml), "x.yaml")
		if (err == nil) != tc.ok {
			t.Errorf("%q: %v", tc.yaml, err)
		}
	}
}

// TestTicketRotation: session_tickets.rotation defaults to 24h and is refused, at its
// line, outside 1m to 168h.
func TestTicketRotation(t *testing.T) {
	c, err := config.Parse([]byte("session_tickets: {}\n"), "x.yaml")
	if err != nil || time.Duration(c.SessionTickets.Rotation) != 24*time.Hour {
		t.Fatalf("default: %v, %v", c, err)
	}
	for _, tc := range []struct {
		name, yaml string
		ok         bool
	}{
		{"hourly", "session_tickets: {rotation: 1h}\n", true},
		{"too short", "session_tickets: {rotation: 10s}\n", false},
		{"past crypto/tls's 7 days", "session_tickets: {rotation: 200h}\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tc.yaml), "x.yaml")
			if (err == nil) != tc.ok {
				t.Fatalf("%q: %v", tc.yaml, err)
			}
			if err != nil && !strings.Contains(err.Error(), "x.yaml:1: session_tickets.rotation: ") {
				t.Fatalf("error %v does not name the field's line", err)
			}
		})
	}
}

// TestTCPIdleTimeout: tcp_idle_timeout defaults to 10m and a negative one is refused at
// its line (it would turn the timeout off).
func TestTCPIdleTimeout(t *testing.T) {
	const base = "target_groups:\n  - {id: web, targets: [{address: 127.0.0.1:1}]}\nlisteners:\n  - {id: t, protocol: tcp, listen: 127.0.0.1:0, target_group: web%s}\n"
	c, err := config.Parse(fmt.Appendf(nil, base, ""), "x.yaml")
	if err != nil || time.Duration(c.Listeners[0].TCPIdleTimeout) != 10*time.Minute {
		t.Fatalf("default: %v", err)
	}
	_, err = config.Parse(fmt.Appendf(nil, base, ", tcp_idle_timeout: -5s"), "x.yaml")
	if err == nil || !strings.Contains(err.Error(), "x.yaml:4: listeners[0].tcp_idle_timeout: must not be negative") {
		t.Fatalf("negative: %v", err)
	}
}

// TestLegacyVersions: min_version "1.0" or "1.1" is accepted only with a cipher suite
// those versions can negotiate (tls12-compat, tls13-only's Go defaults, or an explicit
// CBC suite); the default tls12-modern and an explicit AEAD-only list are refused at the
// line of min_version, naming the fix. "1.2" and "1.3" need nothing.
func TestLegacyVersions(t *testing.T) {
	const base = "certificates:\n  - {id: site, cert: s.crt, key: s.key}\ntarget_groups:\n  - {id: web, targets: [{address: 127.0.0.1:1}]}\n" +
		"listeners:\n  - id: t\n    protocol: tcp_ssl\n    listen: 127.0.0.1:0\n    target_group: web\n    ssl:\n      mode: one_way\n      server_certificates: [site]\n      min_version: %q\n%s"
	for _, tc := range []struct {
		min, extra string
		ok         bool
	}{
		{"1.0", "", false},
		{"1.1", "      policy: tls12-modern\n", false},
		{"1.0", "      ciphers: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n", false},
		{"1.0", "      policy: tls12-compat\n", true},
		{"1.1", "      policy: tls13-only\n", true},
		{"1.0", "      ciphers: [TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA]\n", true},
		{"1.2", "", true},
		{"1.3", "      ciphers: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n", true},
	} {
		_, err := config.Parse(fmt.Appendf(nil, base, tc.min, tc.extra), "x.yaml")
		if tc.ok && err != nil {
			t.Errorf("min_version %s with %q: %v", tc.min, tc.extra, err)
		}
		if !tc.ok && (err == nil || !strings.Contains(err.Error(), "x.yaml:13: listeners[0].ssl.min_version: TLS "+tc.min+" needs a cipher suite it can use: set policy: tls12-compat")) {
			t.Errorf("min_version %s with %q: %v, want the cipher problem at line 13", tc.min, tc.extra, err)
		}
	}
}

// TestHealthCheckRequestFields: a health check's path and host, which go into every
// check's request, are refused at their line with a space or a control character (S9:
// CR/LF/NUL never reach the wire from the config).
func TestHealthCheckRequestFields(t *testing.T) {
	for _, tc := range []struct {
		hc, want string
	}{
		{`{protocol: http, path: /healthz, host: app.internal}`, ""},
		{`{protocol: http, path: "/h\r\nX-Injected: 1"}`, `x.yaml:2: target_groups[0].health_check.path: must not contain spaces or control characters`},
		{`{protocol: http, path: "/h\u0000"}`, `health_check.path: must not contain`},
		{`{protocol: http, host: "app\r\nX: 1"}`, `x.yaml:2: target_groups[0].health_check.host: must not contain spaces or control characters`},
		{`{protocol: http, host: "app internal"}`, `health_check.host: must not contain`},
	} {
		yaml := "target_groups:\n  - {id: web, health_check: " + tc.hc + ", targets: [{address: 127.0.0.1:8080}]}\n"
		_, err := config.Parse([]byte(yaml), "x.yaml")
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.hc, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want %q", tc.hc, err, tc.want)
		}
	}
}

// TestDrainTimeout: drain_timeout defaults to 30s and is refused at its line outside
// 1s-1h.
func TestDrainTimeout(t *testing.T) {
	const base = "%starget_groups:\n  - {id: web, targets: [{address: 127.0.0.1:1}]}\nlisteners:\n  - {id: t, protocol: tcp, listen: 127.0.0.1:0, target_group: web}\n"
	c, err := config.Parse(fmt.Appendf(nil, base, ""), "x.yaml")
	if err != nil || time.Duration(c.DrainTimeout) != 30*time.Second {
		t.Fatalf("default: %v, %v", c, err)
	}
	for _, v := range []string{"500ms", "2h", "-1s"} {
		_, err = config.Parse(fmt.Appendf(nil, base, "drain_timeout: "+v+"\n"), "x.yaml")
		if err == nil || !strings.Contains(err.Error(), "x.yaml:1: drain_timeout: must be between 1s and 1h") {
			t.Errorf("%s: %v", v, err)
		}
	}
	if c, err = config.Parse(fmt.Appendf(nil, base, "drain_timeout: 2m\n"), "x.yaml"); err != nil || time.Duration(c.DrainTimeout) != 2*time.Minute {
		t.Fatalf("2m: %v", err)
	}
}

// TestIDsRefuseControlCharacters: an id of a certificate, target group or listener with
// a CR, LF, NUL or other control character is refused at its line (S9: ids reach log
// lines, metric labels, error pages and gRPC messages).
func TestIDsRefuseControlCharacters(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"target_groups:\n  - {id: \"a\\r\\nb\", targets: [{address: 127.0.0.1:80}]}\n", `x.yaml:2: target_groups[0].id: must not contain control characters`},
		{"certificates:\n  - {id: \"x\\u0000\", ca: ca.crt}\n", `x.yaml:2: certificates[0].id: must not contain control characters`},
		{"listeners:\n  - {id: \"l\\n1\", protocol: tcp, listen: 127.0.0.1:1, target_group: w}\ntarget_groups:\n  - {id: w, targets: [{address: 127.0.0.1:80}]}\n", `x.yaml:2: listeners[0].id: must not contain control characters`},
	} {
		_, err := config.Parse([]byte(tc.yaml), "x.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.want)
		}
	}
	if _, err := config.Parse([]byte("target_groups:\n  - {id: web-1.a_b, targets: [{address: 127.0.0.1:80}]}\n"), "x.yaml"); err != nil {
		t.Errorf("plain id refused: %v", err)
	}
}
