package admin_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"tlsgate/internal/admin"
	"tlsgate/internal/metrics"
)

func TestEndpoints(t *testing.T) {
	m := metrics.New()
	m.Handshakes.WithLabelValues("l", "mutual", "failure", "revoked").Inc()
	srv := httptest.NewServer(admin.Handler(admin.Options{Metrics: m}))
	defer srv.Close()
	for _, tc := range []struct{ path, want string }{
		{"/healthz", "ok"},
		{"/metrics", `tlsgate_handshakes_total{listener="l",mode="mutual",reason="revoked",result="failure"} 1`},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), tc.want) {
			t.Errorf("%s: %d %q, want %q", tc.path, resp.StatusCode, b, tc.want)
		}
	}
	if resp, err := http.Get(srv.URL + "/debug/pprof/"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("pprof served without admin.pprof: %v %v", err, resp.StatusCode)
	}
	resp, err := http.Post(srv.URL+"/healthz", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz: %d", resp.StatusCode)
	}
}

// TestPprofNeedsToken: /debug/pprof/ is served only when enabled, behind the token.
func TestPprofNeedsToken(t *testing.T) {
	srv := httptest.NewServer(admin.Handler(admin.Options{Metrics: metrics.New(), Pprof: true, Token: "secret-token-123456"}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without token: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/debug/pprof/", nil)
	req.Header.Set("Authorization", "Bearer secret-token-123456")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("with token: %d", resp.StatusCode)
	}
}
