package ui

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"time"
)

// cookieName is the console's session cookie. Its value is a random session id, never
// the token: a leaked cookie ends with its session and logout.
const cookieName = "tlsgate_console"

// maxSessions bounds the session table; the oldest session is dropped beyond it.
const maxSessions = 1000

type session struct {
	expires time.Time
	created time.Time
}

// principal is who is asking: by a session, by a verified client certificate, or
// nobody (a console without login is read-only).
type principal struct {
	who  string // shown in the header and recorded with a denial
	key  string // what the CSRF token is bound to; "" when the caller may not write
	sess string // the session id, for logout
}

// identify finds the caller's principal; ok is false when a login is needed.
func (c *console) identify(r *http.Request) (p principal, ok bool) {
	// Admin mutual TLS: the listener verified this certificate against admin.ssl's CA.
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		leaf := r.TLS.VerifiedChains[0][0]
		sum := sha256.Sum256(leaf.Raw)
		return principal{who: leaf.Subject.String(), key: "cert:" + hex.EncodeToString(sum[:])}, true
	}
	if ck, err := r.Cookie(cookieName); err == nil {
		c.mu.Lock()
		s, found := c.sessions[ck.Value]
		if found && !c.o.Now().Before(s.expires) {
			delete(c.sessions, ck.Value)
			found = false
		}
		c.mu.Unlock()
		if found {
			return principal{who: "token session", key: "session:" + ck.Value, sess: ck.Value}, true
		}
	}
	if c.o.Token == "" {
		return principal{who: "read-only (no admin token)"}, true
	}
	return principal{}, false
}

// csrf is the form token of a principal: an HMAC of its key, so it needs no storage
// and is useless for any other session.
func (c *console) csrf(p principal) string {
	if p.key == "" {
		return ""
	}
	m := hmac.New(sha256.New, c.secret[:])
	m.Write([]byte(p.key))
	return hex.EncodeToString(m.Sum(nil))
}

// auth serves h to a known principal, else the login form.
func (c *console) auth(h func(http.ResponseWriter, *http.Request, principal)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := c.identify(r)
		if !ok {
			if r.URL.Path == "/ui/refusals.json" {
				http.Error(w, "log in first", http.StatusUnauthorized)
				return
			}
			c.render(w, http.StatusOK, "login", &page{Title: "Log in", Next: r.URL.Path})
			return
		}
		h(w, r, p)
	})
}

// write serves a change to a principal that may write and whose form carries its
// CSRF token; anyone else gets 403.
func (c *console) write(h func(http.ResponseWriter, *http.Request, principal)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := c.identify(r)
		if !ok || p.key == "" {
			http.Error(w, "forbidden: log in with the admin token (admin.token_file) or a client certificate (admin.ssl) to make changes", http.StatusForbidden)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 8<<20)
		want := c.csrf(p)
		if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(want)) != 1 {
			http.Error(w, "forbidden: the form's CSRF token is missing or stale; reload the page", http.StatusForbidden)
			return
		}
		h(w, r, p)
	})
}

// login opens a session for the right token, compared in constant time.
func (c *console) login(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.PostFormValue("next"))
	got := r.PostFormValue("token")
	if c.o.Token == "" || subtle.ConstantTimeCompare([]byte(got), []byte(c.o.Token)) != 1 {
		c.render(w, http.StatusUnauthorized, "login", &page{Title: "Log in", Next: next, Error: "That token is not the admin token."})
		return
	}
	id := rand.Text()
	now := c.o.Now()
	c.mu.Lock()
	c.prune(now)
	c.sessions[id] = session{expires: now.Add(SessionTTL), created: now}
	c.mu.Unlock()
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: id, Path: "/ui/", Expires: now.Add(SessionTTL), MaxAge: int(SessionTTL / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// prune drops expired sessions, and the oldest beyond maxSessions. The caller holds c.mu.
func (c *console) prune(now time.Time) {
	var oldest string
	for id, s := range c.sessions {
		if !now.Before(s.expires) {
			delete(c.sessions, id)
		} else if oldest == "" || s.created.Before(c.sessions[oldest].created) {
			oldest = id
		}
	}
	if len(c.sessions) >= maxSessions {
		delete(c.sessions, oldest)
	}
}

// logout ends the session (when the form's token matches it).
func (c *console) logout(w http.ResponseWriter, r *http.Request) {
	if p, ok := c.identify(r); ok && p.sess != "" &&
		subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(c.csrf(p))) == 1 {
		c.mu.Lock()
		delete(c.sessions, p.sess)
		c.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/ui/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

// safeNext keeps a post-login redirect inside the console (no open redirect).
func safeNext(next string) string {
	switch next {
	case "/ui/certificates", "/ui/clients", "/ui/targets", "/ui/denylist":
		return next
	}
	return "/ui/"
}
