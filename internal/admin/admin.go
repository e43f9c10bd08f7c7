// Package admin serves the admin listener: /healthz and /metrics. The management API
// arrives later; handlers here never touch the data path.
package admin

import (
	"net/http"

	"tlsgate/internal/metrics"
)

// Handler returns the admin mux.
func Handler(m *metrics.Metrics) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", m.Handler())
	return mux
}
