package ui_test

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestLogin: the console asks for the token, refuses a wrong one, and the right one
// opens a session whose cookie is HttpOnly, SameSite=Strict, expiring, and not the token.
func TestLogin(t *testing.T) {
	e := newEnv(t)
	c := client()
	for _, path := range []string{"/", "/ui"} {
		resp, err := c.Get(e.admin() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode/100 != 3 || loc != "/ui/" {
			t.Errorf("GET %s: %d to %q, want a redirect to /ui/", path, resp.StatusCode, loc)
		}
	}
	resp, err := c.Get(e.admin() + "/ui/clients")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `name="token"`) || strings.Contains(string(body), "Recent refusals") {
		t.Fatalf("unauthenticated visit: %d %s", resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}
	resp, err = c.PostForm(e.admin()+"/ui/login", url.Values{"token": {token + "x"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 || !strings.Contains(string(body), "not the admin token") {
		t.Fatalf("wrong token: %d %v", resp.StatusCode, resp.Cookies())
	}
	ck := e.login(c)
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.MaxAge <= 0 || ck.Expires.IsZero() || strings.Contains(ck.Value, token) {
		t.Errorf("session cookie %+v", ck)
	}
	req, _ := http.NewRequest(http.MethodGet, e.admin()+"/ui/clients", nil)
	req.AddCookie(ck)
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "Recent refusals") {
		t.Fatalf("with the session: %d", resp.StatusCode)
	}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// TestWritesNeedSessionAndCSRF: a change needs the session and its form token, and is
// refused from another origin even with both.
func TestWritesNeedSessionAndCSRF(t *testing.T) {
	e := newEnv(t)
	c := client()
	ck := e.login(c)
	page := func() string {
		req, _ := http.NewRequest(http.MethodGet, e.admin()+"/ui/targets", nil)
		req.AddCookie(ck)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	m := csrfField.FindStringSubmatch(page())
	if m == nil {
		t.Fatal("no CSRF token in the targets page")
	}
	post := func(form url.Values, withCookie bool, hdr map[string]string) int {
		req, _ := http.NewRequest(http.MethodPost, e.admin()+"/ui/targets/weight", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		if withCookie {
			req.AddCookie(ck)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	drain := url.Values{"group": {"web"}, "address": {e.targets[0].addr()}, "drain": {"1"}, "csrf": {m[1]}}
	noToken := url.Values{"group": {"web"}, "address": {e.targets[0].addr()}, "drain": {"1"}}
	for _, tc := range []struct {
		name   string
		form   url.Values
		cookie bool
		hdr    map[string]string
	}{
		{"no session", drain, false, nil},
		{"no CSRF token", noToken, true, nil},
		{"another session's token", url.Values{"group": {"web"}, "address": {e.targets[0].addr()}, "drain": {"1"}, "csrf": {strings.Repeat("0", 64)}}, true, nil},
		{"cross-site", drain, true, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"}},
	} {
		if code := post(tc.form, tc.cookie, tc.hdr); code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", tc.name, code)
		}
	}
	if strings.Contains(page(), "drained") {
		t.Fatal("a refused write drained the target")
	}
	if code := post(drain, true, nil); code != http.StatusSeeOther {
		t.Fatalf("the console's own form: %d, want 303", code)
	}
	if !strings.Contains(page(), "drained") {
		t.Fatal("the target was not drained")
	}
}
