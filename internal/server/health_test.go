package server_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"tlsgate/internal/pki"
	"tlsgate/internal/porttest"
)

// TestAllTargetsDown: HTTP answers 503 with a clear body; TCP SSL closes the connection
// and logs why.
func TestAllTargetsDown(t *testing.T) {
	dead := porttest.Dead(t)
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		e.groups = fmt.Sprintf("  - {id: down, targets: [{address: %s, weight: 0}]}\n", dead)
		return "", "  - {id: down_https, protocol: https, listen: 127.0.0.1:0, target_group: down,\n" +
			"     ssl: {mode: one_way, server_certificates: [site]}}\n" +
			"  - {id: down_tcp, protocol: tcp_ssl, listen: 127.0.0.1:0, target_group: down,\n" +
			"     ssl: {mode: one_way, server_certificates: [site]}}\n"
	})
	tr := &http.Transport{TLSClientConfig: e.tlsConfig(tls.VersionTLS13, nil)}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("https://" + e.addr("down_https") + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "no healthy backend in target group down") {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	c, err := tls.Dial("tcp", e.addr("down_tcp"), e.tlsConfig(tls.VersionTLS13, nil))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
		t.Fatalf("read %q, %v: want the connection closed", b, err)
	}
	c.Close()
	line := e.sink.Next(t, map[string]any{"msg": "connection", "listener": "down_tcp"})
	if !strings.Contains(fmt.Sprint(line["error"]), "no available target") {
		t.Fatalf("line %v", line)
	}
}

// TestPassiveMarking: a target that refuses connections costs no request: each refused
// connect is retried on the other target (TestDeadTargetCounts counts the dials).
func TestPassiveMarking(t *testing.T) {
	dead := porttest.Dead(t)
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		e.groups = fmt.Sprintf("  - {id: mixed, targets: [{address: %s}, {address: %s}]}\n", dead, e.backend.HTTP.Addr())
		return "", "  - {id: mixed_https, protocol: https, listen: 127.0.0.1:0, target_group: mixed,\n" +
			"     ssl: {mode: one_way, server_certificates: [site]}}\n"
	})
	failed := 0
	for range 6 {
		tr := &http.Transport{TLSClientConfig: e.tlsConfig(tls.VersionTLS13, nil), DisableKeepAlives: true}
		resp, err := (&http.Client{Transport: tr}).Get("https://" + e.addr("mixed_https") + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusBadGateway {
			failed++
		} else if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if failed != 0 {
		t.Fatalf("%d requests failed, want 0 (retried on the live target)", failed)
	}
}
