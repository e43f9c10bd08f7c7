package server_test

import (
	"bufio"
	"crypto/tls"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"tlsgate/internal/metrics"
	"tlsgate/internal/pki"
	"tlsgate/internal/porttest"
)

// metricRef is a metric name in a PromQL expression of contrib's rules or dashboard.
var metricRef = regexp.MustCompile(`\b(?:tlsgate|go|process)_[a-z0-9_]+\b`)

// TestContribMetricsExist scrapes a live server's /metrics after real traffic (mutual
// handshakes, a refusal, requests to a live and to a dead target, health checks) and
// fails when the Grafana dashboard or the alert rules name a metric it does not export:
// a renamed metric would otherwise leave a blank panel or an alert that never fires.
func TestContribMetricsExist(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		e.top = "admin: {listen: 127.0.0.1:0}"
		e.groups = "  - {id: dead, targets: [{address: " + porttest.Dead(t) + "}], health_check: {interval: 1h, timeout: 1s}}\n"
		return "", "  - {id: deadweb, protocol: https, listen: 127.0.0.1:0, target_group: dead,\n     ssl: {mode: one_way, server_certificates: [site]}}\n"
	})
	alice := e.ca.Issue("alice")
	if _, err := e.get("mutual", tls.VersionTLS13, new(alice.TLS()), nil, false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.get("mutual", tls.VersionTLS13, nil, nil, false); err == nil {
		t.Fatal("mutual listener served a client without a certificate")
	}
	if resp, _, err := e.request("deadweb", e.tlsConfig(tls.VersionTLS13, nil), nil, false); err != nil || resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("request to a dead target: %v %v", resp, err)
	}
	resp, err := http.Get("http://" + e.srv.AdminAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	exported := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		exported[line[:strings.IndexAny(line, "{ ")]] = true
	}
	for _, f := range contribFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range slices.Compact(slices.Sorted(slices.Values(metricRef.FindAllString(string(b), -1)))) {
			if !exported[name] {
				t.Errorf("%s names %s, which /metrics does not export", filepath.Base(f), name)
			}
		}
	}
	// The names frozen in the metrics package that the contrib files use are the ones
	// documented in README's Metrics section.
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{metrics.NameBuildInfo, metrics.NameCertExpiryTimestamp, metrics.NameClientExpirySeconds, metrics.NameHandshakeSeconds,
		metrics.NameUpstreamRequests, metrics.NameUpstreamErrors, metrics.NameUpstreamSeconds, metrics.NameReloadLastSuccess, metrics.NameReloadLastTimestamp} {
		if !strings.Contains(string(readme), n) {
			t.Errorf("README does not document %s", n)
		}
	}
}

func contribFiles(t *testing.T) []string {
	t.Helper()
	var fs []string
	for _, p := range []string{"prometheus/*.yml", "grafana/*.json"} {
		m, err := filepath.Glob(filepath.Join("..", "..", "contrib", p))
		if err != nil || len(m) == 0 {
			t.Fatalf("no contrib files %s: %v", p, err)
		}
		fs = append(fs, m...)
	}
	return fs
}
