package config_test

import (
	"strings"
	"testing"
	"time"

	"tlsgate/internal/config"
)

// TestUpstreamProtocol: a target group's protocol defaults to http1; h2 needs tls (a
// target's identity is always verified) and h2c refuses it; a grpc health check may name
// a service, which no other check has.
func TestUpstreamProtocol(t *testing.T) {
	const head = "certificates:\n  - {id: bca, ca: ca.crt}\ntarget_groups:\n"
	for _, tc := range []struct{ name, group, want string }{
		{"default", "{id: g, targets: [{address: 127.0.0.1:1}]}", ""},
		{"h2c", "{id: g, protocol: h2c, targets: [{address: 127.0.0.1:1}]}", ""},
		{"h2 with tls", "{id: g, protocol: h2, tls: {ca_certificate: bca}, targets: [{address: 127.0.0.1:1}]}", ""},
		{"grpc check", "{id: g, protocol: h2c, health_check: {protocol: grpc, service: echo}, targets: [{address: 127.0.0.1:1}]}", ""},
		{"unknown", "{id: g, protocol: http3, targets: [{address: 127.0.0.1:1}]}",
			`x.yaml:4: target_groups[0].protocol: must be http1, h2c or h2, not "http3"`},
		{"h2 without tls", "{id: g, protocol: h2, targets: [{address: 127.0.0.1:1}]}",
			"x.yaml:4: target_groups[0].protocol: h2 is HTTP/2 over TLS"},
		{"h2c with tls", "{id: g, protocol: h2c, tls: {ca_certificate: bca}, targets: [{address: 127.0.0.1:1}]}",
			"x.yaml:4: target_groups[0].protocol: h2c is HTTP/2 in clear"},
		{"service without grpc", "{id: g, health_check: {protocol: http, service: echo}, targets: [{address: 127.0.0.1:1}]}",
			"x.yaml:4: target_groups[0].health_check.service: is only for protocol grpc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse([]byte(head+"  - "+tc.group+"\n"), "x.yaml")
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if p := c.TargetGroups[0].Protocol; tc.name == "default" && p != config.UpstreamHTTP1 {
					t.Errorf("default protocol %q", p)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestHealthCheckTimeoutFollowsInterval: a health check's timeout defaults to 2 s, or
// to its interval when that is shorter (HAProxy bounds a check by inter when timeout
// check is unset), so interval: 1s alone is accepted; a timeout set above the interval
// is still refused.
func TestHealthCheckTimeoutFollowsInterval(t *testing.T) {
	const head = "target_groups:\n  - {id: g, targets: [{address: 127.0.0.1:1}], health_check: "
	for _, tc := range []struct{ check, want, err string }{
		{"{interval: 1s}", "1s", ""},
		{"{interval: 300ms}", "300ms", ""},
		{"{interval: 10s}", "2s", ""},
		{"{}", "2s", ""},
		{"{interval: 5s, timeout: 4s}", "4s", ""},
		{"{interval: 1s, timeout: 2s}", "", "timeout at most interval"},
	} {
		c, err := config.Parse([]byte(head+tc.check+"}\n"), "x.yaml")
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error = %v, want %q", tc.check, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.check, err)
			continue
		}
		if got := time.Duration(c.TargetGroups[0].HealthCheck.Timeout).String(); got != tc.want {
			t.Errorf("%s: timeout %s, want %s", tc.check, got, tc.want)
		}
	}
}
