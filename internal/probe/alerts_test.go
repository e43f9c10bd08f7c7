package probe_test

import (
	"crypto/tls"
	"fmt"
	"strings"
	"testing"

	"tlsgate/internal/probe"
)

// TestEveryAlertHasAnEntry: every alert crypto/tls can name maps to a cause and a fix,
// and Diagnose finds it in the error a Go client returns for it.
func TestEveryAlertHasAnEntry(t *testing.T) {
	n := 0
	for a := range 256 {
		text := tls.AlertError(a).Error()
		if strings.HasPrefix(text, "tls: alert(") {
			continue // not an alert crypto/tls knows
		}
		text = strings.TrimPrefix(text, "tls: ")
		n++
		err := fmt.Errorf("remote error: tls: %s", text)
		d := probe.Diagnose(err)
		if d.Alert != text || d.Cause == "" || d.Fix == "" {
			t.Errorf("alert %d %q: diagnosis %+v", a, text, d)
		}
	}
	if n < 30 {
		t.Fatalf("only %d alerts found; crypto/tls's table changed?", n)
	}
}

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"https://example.com/x", "example.com:443", "[::1]:8443", "https://[::1]/", "http://x", ":1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := probe.ParseTarget(s)
		if err != nil {
			return
		}
		if tg.Host == "" || tg.Port == "" {
			t.Fatalf("%q parsed to %+v", s, tg)
		}
	})
}

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		in      string
		addr    string
		https   bool
		path    string
		wantErr bool
	}{
		{"https://example.com/a?b=c", "example.com:443", true, "/a?b=c", false},
		{"https://[::1]:8443", "[::1]:8443", true, "/", false},
		{"db.example.com:5433", "db.example.com:5433", false, "", false},
		{"http://example.com", "", false, "", true},
		{"example.com", "", false, "", true},
		{"example.com:http", "", false, "", true},
	} {
		tg, err := probe.ParseTarget(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("%q: error %v", tc.in, err)
			continue
		}
		if err == nil && (tg.Addr() != tc.addr || tg.HTTPS != tc.https || tg.Path != tc.path) {
			t.Errorf("%q: %+v", tc.in, tg)
		}
	}
}
