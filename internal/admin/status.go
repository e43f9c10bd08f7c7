package admin

import (
	"net/http"

	"tlsgate/internal/status"
)

// Runtime is the running server's view: what GET /api/v1/status returns and the
// console (/ui/) shows, from one source.
type Runtime interface {
	Status() *status.View
	// History is where the console records why a client was denied.
	History() *status.Recorder
}

// getStatus serves GET /api/v1/status: listeners with their handshake counts,
// certificates, CA bundles and CRLs, targets, the denylist, and the recent clients and
// refusals (bounded; see status.MaxClients). ?q= narrows the clients to a search.
func getStatus(rt Runtime) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v := rt.Status()
		if q := r.URL.Query().Get("q"); q != "" {
			v.Clients = status.Search(v.Clients, q)
		}
		writeJSON(w, http.StatusOK, v)
	}
}
