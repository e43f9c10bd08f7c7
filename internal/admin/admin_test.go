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
	resp, err := http.Post(srv.URL+"/healthz", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz: %d", resp.StatusCode)
	}
}
