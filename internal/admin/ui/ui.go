// Package ui is the web console under /ui/ on the admin listener: server-rendered
// pages (html/template) over the runtime view of internal/status — listeners,
// certificates, client identities and refusals, targets, the denylist — and the few
// actions an operator takes from them (deny a client, drain a target, upload a
// certificate). Every asset is embedded; the Content-Security-Policy allows no inline
// script or style. Every change is sent to the management API's own handlers, so a
// console action is checked, written and applied exactly as the same API call would be;
// the console adds only who asked and why.
//
// It reads nothing of the data path itself and imports no package of it.
package ui

import (
	"crypto/rand"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"sync"
	"time"

	"tlsgate/internal/status"
)

//go:embed assets templates
var files embed.FS

// Runtime is the running server as the console reads it (admin.Runtime).
type Runtime interface {
	Status() *status.View
	History() *status.Recorder
}

// Options configure the console.
type Options struct {
	Runtime Runtime
	// API is the management API's handler (behind its authentication): the console's
	// changes are requests to it.
	API http.Handler
	// Token is the admin token that opens a session; "" means the console has no
	// login and is read-only, unless the admin listener verifies client certificates
	// (admin.ssl), whose verified clients may act.
	Token string
	// Now is the clock for sessions; nil means time.Now.
	Now func() time.Time
}

// SessionTTL is how long a console session lasts after login.
const SessionTTL = 8 * time.Hour

type console struct {
	o      Options
	pages  map[string]*template.Template
	secret [32]byte // keys the CSRF tokens

	mu       sync.Mutex
	sessions map[string]session
	weights  map[string]int // "group\x00address" → weight before a drain, for restore
}

// Handler serves the console under /ui/.
func Handler(o Options) http.Handler {
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &console{o: o, pages: parsePages(), sessions: map[string]session{}, weights: map[string]int{}}
	_, _ = rand.Read(c.secret[:])
	mux := http.NewServeMux()
	assets, _ := fs.Sub(files, "assets")
	mux.Handle("GET /ui/assets/", http.StripPrefix("/ui/assets/", http.FileServerFS(assets)))
	mux.HandleFunc("POST /ui/login", c.login)
	mux.HandleFunc("POST /ui/logout", c.logout)
	mux.Handle("GET /ui/{$}", c.auth(c.overview))
	mux.Handle("GET /ui/certificates", c.auth(c.certificates))
	mux.Handle("POST /ui/certificates", c.write(c.upload))
	mux.Handle("GET /ui/clients", c.auth(c.clients))
	mux.Handle("GET /ui/refusals.json", c.auth(c.refusals))
	mux.Handle("GET /ui/clients/deny", c.auth(c.confirmDeny))
	mux.Handle("POST /ui/clients/deny", c.write(c.deny))
	mux.Handle("GET /ui/targets", c.auth(c.targets))
	mux.Handle("POST /ui/targets/weight", c.write(c.setWeight))
	mux.Handle("GET /ui/denylist", c.auth(c.denylist))
	mux.Handle("GET /ui/denylist/remove", c.auth(c.confirmRemove))
	mux.Handle("POST /ui/denylist/remove", c.write(c.remove))
	mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "404 page not found", http.StatusNotFound)
	})
	// A page of another origin must not drive the console with the operator's
	// session (CSRF): cross-origin writes are refused here, and each form also carries
	// a token bound to the session (auth.go).
	return headers(http.NewCrossOriginProtection().Handler(mux))
}

// csp allows only the console's own script, style and images: an injected inline
// script or style attribute does not run.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// headers sets the security headers of every console response.
func headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}
