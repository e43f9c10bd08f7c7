package config_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"tlsgate/internal/config"
)

// TestAbuseLimits: the header limits, max_header_memory and write_timeout default to
// nginx's values, and bad ones are refused at their line.
func TestAbuseLimits(t *testing.T) {
	const base = "%starget_groups:\n  - {id: web, targets: [{address: 127.0.0.1:1}]}\nlisteners:\n  - {id: h, protocol: http, listen: 127.0.0.1:0, target_group: web%s}\n"
	c, err := config.Parse(fmt.Appendf(nil, base, "", ""), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	l := c.Listeners[0]
	if l.MaxHeaderBytes != 65536 || l.MaxHeaderFields != 100 || l.MaxHeaderFieldBytes != 8192 ||
		time.Duration(l.WriteTimeout) != time.Minute || c.MaxHeaderMemory != 32<<20 {
		t.Fatalf("defaults: %+v, max_header_memory %d", l, c.MaxHeaderMemory)
	}
	for _, tc := range []struct{ top, listener, want string }{
		{"", ", write_timeout: -1s", "x.yaml:4: listeners[0].write_timeout: must not be negative"},
		{"", ", max_header_fields: -1", "x.yaml:4: listeners[0].max_header_fields: must not be negative"},
		{"", ", max_header_bytes: 4096", "x.yaml:4: listeners[0].max_header_field_bytes: larger than max_header_bytes (4096)"},
		{"max_header_memory: -1\n", "", "x.yaml:1: max_header_memory: must not be negative"},
	} {
		_, err := config.Parse(fmt.Appendf(nil, base, tc.top, tc.listener), "x.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q %q: %v, want %q", tc.top, tc.listener, err, tc.want)
		}
	}
}
