package ui_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tlsgate/internal/tooltest"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// browser starts Debian's headless chromium for the test (skipped where it is not
// installed, except in CI) and returns a tab's context.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := tooltest.Path(t, "chromium")
	// The network here is closed: nothing that would call out is started.
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 800),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	return ctx
}

// do runs browser actions, failing the test on error.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// text is the visible text of the page's main element.
func text(t *testing.T, ctx context.Context) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	if err != nil {
		t.Fatalf("reading the page: %v", err)
	}
	return s
}

// want fails unless the page's text has every string.
func want(t *testing.T, ctx context.Context, page string, wants ...string) {
	t.Helper()
	got := text(t, ctx)
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s page lacks %q:\n%s", page, w, got)
		}
	}
}

// shots keeps a full-page screenshot of the current page at 1280×800 and at a phone's
// 390×844, under the test's artifact directory.
func shots(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := t.ArtifactDir()
	for _, size := range [][2]int64{{1280, 800}, {390, 844}} {
		var steps []chromedp.Action[chromedp.Void]
		if size[0] < 600 {
			steps = append(steps, chromedp.EmulateViewport(size[0], size[1], chromedp.EmulateScale(2)))
		} else {
			steps = append(steps, chromedp.EmulateViewport(size[0], size[1]))
		}
		do(t, ctx, "resizing", steps...)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		f := filepath.Join(dir, fmt.Sprintf("%s-%dx%d.png", name, size[0], size[1]))
		if err := os.WriteFile(f, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	do(t, ctx, "resizing back", chromedp.EmulateViewport(1280, 800))
	t.Logf("screenshots of %s in %s", name, dir)
}

// TestConsoleInBrowser drives the console in headless Chromium against a live server:
// login (a wrong token first), every page after real handshakes, search by serial,
// Deny, drain, and a cross-site POST.
func TestConsoleInBrowser(t *testing.T) {
	e := newEnv(t)
	ctx := browser(t)
	e.traffic()

	do(t, ctx, "login with a wrong token",
		chromedp.Navigate(e.admin()+"/ui/"),
		chromedp.SendKeys(chromedp.CSS(`input[name="token"]`), "not-the-token"),
		chromedp.Submit(chromedp.CSS(`input[name="token"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.error`)))
	want(t, ctx, "login", "not the admin token")
	shots(t, ctx, "login")
	do(t, ctx, "login",
		chromedp.SendKeys(chromedp.CSS(`input[name="token"]`), token),
		chromedp.Submit(chromedp.CSS(`input[name="token"]`)),
		chromedp.WaitVisible(chromedp.CSS(`nav`)))
	cookies, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{e.admin() + "/ui/"}})
	if err != nil || len(cookies.Cookies) != 1 {
		t.Fatalf("cookies: %v %v", cookies, err)
	}
	if ck := cookies.Cookies[0]; !ck.HTTPOnly || ck.SameSite != network.CookieSameSiteStrict || ck.Session || ck.Expires <= 0 {
		t.Errorf("session cookie %+v", ck)
	}

	t.Run("overview", func(t *testing.T) {
		do(t, ctx, "overview", chromedp.Click(chromedp.Search(`//nav/a[text()="Overview"]`)), chromedp.WaitVisible(chromedp.CSS(`h1`)))
		want(t, ctx, "overview", "mutual", "one_way", e.srv.Addr("mutual").String(), "revoked", "no_client_cert", "localhost")
		shots(t, ctx, "overview")
	})
	t.Run("certificates", func(t *testing.T) {
		do(t, ctx, "certificates", chromedp.Click(chromedp.Search(`//nav/a[text()="Certificates"]`)), chromedp.WaitVisible(chromedp.CSS(`.bundle`)))
		want(t, ctx, "certificates", "CN=localhost", "127.0.0.1", "CN=Console Test Root", "ca.crl", "days left",
			"CN=Partner Root", "/partner.crl", "updated", "/missing.crl", "failure", "not fetched yet")
		// What expires within 30 days stands out.
		do(t, ctx, "highlight", chromedp.WaitVisible(chromedp.Search(`//tr[@class="soon" and contains(., "legacy.example")]`)))
		shots(t, ctx, "certificates")
	})
	t.Run("clients", func(t *testing.T) {
		do(t, ctx, "clients", chromedp.Click(chromedp.Search(`//nav/a[text()="Clients"]`)), chromedp.WaitVisible(chromedp.CSS(`#refusals`)))
		want(t, ctx, "clients", "alice", "spiffe://example.org/alice", serial(e.alice), "mallory", "revoked", "no_client_cert",
			"ask the site's operator for a new certificate", // the reason table's fix for revoked
			"not_allowed", "request to /admin/", "ask the site's operator to allow your certificate's identity")
		// The refusal list is live: a new refusal shows without a reload.
		do(t, ctx, "live list", chromedp.WaitVisible(chromedp.CSS(`#live`)))
		e.refused(nil, "no_client_cert")
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelectorAll("#refusals tr.new").length >= 1`, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			t.Fatalf("the new refusal did not appear: %v", err)
		}
		shots(t, ctx, "clients")
	})
	t.Run("search by serial", func(t *testing.T) {
		do(t, ctx, "search",
			chromedp.SendKeys(chromedp.CSS(`input[name="q"]`), serial(e.alice)),
			chromedp.Submit(chromedp.CSS(`input[name="q"]`)),
			chromedp.WaitVisible(chromedp.CSS(`.found`)))
		found, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`.found`)))
		if err != nil || !strings.Contains(found, "alice") || strings.Contains(found, "mallory") || !strings.Contains(found, "mutual") {
			t.Fatalf("search for alice's serial found: %q %v", found, err)
		}
		shots(t, ctx, "search")
	})
	t.Run("deny", func(t *testing.T) {
		open := e.keepAlive(e.alice)
		do(t, ctx, "deny",
			chromedp.Navigate(e.admin()+"/ui/clients"),
			chromedp.Click(chromedp.Search(`//tr[contains(., "alice")]//button[text()="Deny"]`)),
			chromedp.WaitVisible(chromedp.CSS(`.confirm`)))
		want(t, ctx, "confirmation", "Deny this client?", serial(e.alice))
		shots(t, ctx, "deny-confirm")
		if e.denied(serial(e.alice)) {
			t.Fatal("denied before the confirmation")
		}
		do(t, ctx, "confirm",
			chromedp.SendKeys(chromedp.CSS(`input[name="note"]`), "laptop stolen"),
			chromedp.Click(chromedp.Search(`//section[@class="confirm"]//button[text()="Deny"]`)),
			chromedp.WaitVisible(chromedp.CSS(`.notice`)))
		want(t, ctx, "denylist", serial(e.alice), "laptop stolen", "token session")
		e.closed(open)
		e.refused(e.alice, "denied")
		shots(t, ctx, "denylist")
	})
	t.Run("drain", func(t *testing.T) {
		drained, other := e.targets[0], e.targets[1]
		do(t, ctx, "drain",
			chromedp.Click(chromedp.Search(`//nav/a[text()="Targets"]`)),
			chromedp.Click(chromedp.Search(fmt.Sprintf(`//tr[contains(., %q)]//button[text()="Drain"]`, drained.addr()))),
			chromedp.WaitVisible(chromedp.CSS(`.notice`)))
		want(t, ctx, "targets", "drained", drained.addr(), other.addr())
		before, otherBefore := drained.n.Load(), other.n.Load()
		for range 6 {
			if err := e.get("mutual", e.bob); err != nil {
				t.Fatal(err)
			}
		}
		if n := drained.n.Load() - before; n != 0 {
			t.Errorf("the drained target got %d new requests", n)
		}
		if n := other.n.Load() - otherBefore; n != 6 {
			t.Errorf("the other target got %d of 6 requests", n)
		}
		shots(t, ctx, "targets")
		do(t, ctx, "restore",
			chromedp.Click(chromedp.Search(fmt.Sprintf(`//tr[contains(., %q)]//button[text()="Restore"]`, drained.addr()))),
			// The drain's notice is still shown until the restore's page arrives.
			chromedp.WaitVisible(chromedp.Search(`//p[@class="notice" and contains(., "restored")]`)))
	})
	t.Run("cross-site POST", func(t *testing.T) {
		// Another origin's page posts a denial of bob with the operator's browser.
		evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, `<!doctype html><form method="post" action="%s/ui/clients/deny">
<input name="serial" value="%s"><input name="csrf" value="guess"><button id="go" type="submit">go</button></form>`, e.admin(), serial(e.bob))
		}))
		defer evil.Close()
		do(t, ctx, "cross-site page", chromedp.Navigate(strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)))
		resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`#go`)))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != http.StatusForbidden {
			t.Errorf("the cross-site POST was answered with %d, want 403", resp.Status)
		}
		if e.denied(serial(e.bob)) {
			t.Fatal("a cross-site POST denied bob")
		}
		if err := e.get("mutual", e.bob); err != nil {
			t.Fatalf("bob after the cross-site POST: %v", err)
		}
	})
}
