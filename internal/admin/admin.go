// Package admin serves the admin listener: /healthz, /metrics and the management API
// under /api/v1/ (JSON; net/http ServeMux patterns). Every change goes through the
// Controller, which validates, builds, persists and swaps atomically; handlers never
// touch the data path themselves.
package admin

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/pprof"
	"net/url"
	"strings"

	"tlsgate/internal/admin/ui"
	"tlsgate/internal/config"
	"tlsgate/internal/metrics"
)

// Controller is the running server as the API sees it.
type Controller interface {
	// Config is a fresh copy of the configuration.
	Config() (*config.Config, error)
	// Update applies a change atomically and returns lint warnings.
	Update(func(*config.Config) error) (config.Problems, error)
	// ConfigDir is where uploaded certificate files are written.
	ConfigDir() string
}

// Options configure the admin handler.
type Options struct {
	Metrics *metrics.Metrics
	// Controller serves /api/v1/; nil serves only /healthz and /metrics.
	Controller Controller
	// Runtime serves GET /api/v1/status and the console under /ui/ (with Controller).
	Runtime Runtime
	// Token, when set, is the bearer token /api/v1/ (and /debug/pprof/) requires.
	Token string
	// Unix is set when the admin listener is a unix socket (mode 0600): whoever can
	// connect is the socket's owner, which authenticates writes.
	Unix bool
	// MutualTLS is set when the admin listener requires a client certificate that passes
	// admin.ssl's mutual policy (the handshake fails otherwise), which authenticates.
	MutualTLS bool
	// Pprof serves the Go profiler under /debug/pprof/.
	Pprof bool
	// Health, when set, is asked by /healthz: an error (a listener that stopped
	// accepting) answers 503 with its text.
	Health func() error
}

// Handler returns the admin mux.
func Handler(o Options) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if o.Health != nil {
			if err := o.Health(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte("failing: " + err.Error() + "\n"))
				return
			}
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", o.Metrics.Handler())
	if o.Controller != nil {
		a := &api{c: o.Controller}
		api := http.NewServeMux()
		a.routes(api)
		if o.Runtime != nil {
			api.HandleFunc("GET /api/v1/status", getStatus(o.Runtime))
			// The console authenticates its own users (token session or admin mTLS) and
			// sends its changes to the API's handlers (ui.Options.API).
			mux.Handle("/ui/", ui.Handler(ui.Options{Runtime: o.Runtime, API: api, Token: o.Token}))
			mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
		}
		// Browsers must not be able to drive the API from another origin (CSRF).
		guarded := http.NewCrossOriginProtection().Handler(bearer(o.Token, writeGuard(o, api)))
		mux.Handle("/api/", guarded)
		// Issue #6 names the resources without the prefix (POST /certificates): they
		// answer there too, as the same requests under /api/v1/ behind the same guards.
		for _, name := range []string{"certificates", "listeners", "target_groups", "denylist"} {
			mux.Handle("/"+name, underAPI(guarded))
			mux.Handle("/"+name+"/", underAPI(guarded))
		}
	}
	if o.Pprof {
		pp := http.NewServeMux()
		pp.HandleFunc("/debug/pprof/", pprof.Index)
		pp.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		pp.HandleFunc("/debug/pprof/profile", pprof.Profile)
		pp.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		pp.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.Handle("/debug/pprof/", bearer(o.Token, pp))
	}
	return mux
}

// underAPI serves a request for /NAME… as the same request for /api/v1/NAME….
func underAPI(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r2 := new(http.Request)
		*r2 = *r
		r2.URL = new(url.URL)
		*r2.URL = *r.URL
		r2.URL.Path = "/api/v1" + r.URL.Path
		if r.URL.RawPath != "" {
			r2.URL.RawPath = "/api/v1" + r.URL.RawPath
		}
		next.ServeHTTP(w, r2)
	})
}

// bearer requires "Authorization: Bearer <token>" when token is set, compared in
// constant time.
func bearer(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tlsgate"`)
			writeError(w, http.StatusUnauthorized, errors.New("a valid bearer token is required (admin.token_file)"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// writeGuard refuses every request that changes something unless it is authenticated:
// by the bearer token (checked before it), by a verified client certificate (admin.ssl),
// or by coming through the unix socket. Without any of them the API is read-only. The
// threat: on a loopback listener without a token, any local process (another user, a
// compromised service, a browser's DNS-rebinding page) could rewrite the config and
// point a listener at its own backend or certificate.
func writeGuard(o Options, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			mtls := o.MutualTLS && r.TLS != nil && len(r.TLS.PeerCertificates) > 0
			if o.Token == "" && !o.Unix && !mtls {
				writeError(w, http.StatusForbidden, errors.New("changes need authentication: set admin.token_file, admin.ssl (mutual TLS) or listen on a unix socket (admin.listen: unix:/run/tlsgate/admin.sock); this admin listener is read-only"))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// apiError is the one JSON error shape.
type apiError struct {
	Error    string   `json:"error"`
	Problems []string `json:"problems,omitempty"`
}

func writeError(w http.ResponseWriter, code int, err error) {
	e := apiError{Error: err.Error()}
	if ps, ok := errors.AsType[config.Problems](err); ok {
		e.Error = "the change was rejected; nothing was applied"
		for _, p := range ps {
			e.Problems = append(e.Problems, p.String())
		}
	}
	writeJSON(w, code, e)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
