package config_test

import (
	"strings"
	"testing"

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
