package server_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"testing"

	"tlsgate/internal/pki"
)

// TestRedirectToHTTPS: an http listener with redirect_https_port answers 308.
func TestRedirectToHTTPS(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		return "", "  - {id: redir, protocol: http, listen: 127.0.0.1:0, redirect_https_port: 8443}\n"
	})
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodGet, "http://"+e.addr("redir")+"/a/b?c=d", nil)
	req.Host = "www.example.com:80"
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != "https://www.example.com:8443/a/b?c=d" {
		t.Fatalf("%d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestStickyCookie: with sticky_cookie, a client that keeps its cookie stays on one
// target; without it, requests spread.
func TestStickyCookie(t *testing.T) {
	named := func(name string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, name) }))
		t.Cleanup(s.Close)
		return s
	}
	a, b := named("A"), named("B")
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		e.groups = fmt.Sprintf("  - {id: sticky, sticky_cookie: TLSGATE, targets: [{address: %s}, {address: %s}]}\n", a.Listener.Addr(), b.Listener.Addr())
		return "", "  - {id: st, protocol: https, listen: 127.0.0.1:0, target_group: sticky, ssl: {mode: one_way, server_certificates: [site]}}\n"
	})
	run := func(jar http.CookieJar) map[string]int {
		tr := &http.Transport{TLSClientConfig: e.tlsConfig(tls.VersionTLS13, nil)}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr, Jar: jar}
		got := map[string]int{}
		for range 6 {
			resp, err := c.Get("https://" + e.addr("st") + "/")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got[string(body)]++
		}
		return got
	}
	jar, _ := cookiejar.New(nil)
	if got := run(jar); len(got) != 1 {
		t.Fatalf("with the cookie: %v, want one target", got)
	}
	if got := run(nil); got["A"] != 3 || got["B"] != 3 {
		t.Fatalf("without the cookie: %v, want 3/3", got)
	}
}
