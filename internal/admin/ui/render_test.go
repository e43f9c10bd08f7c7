package ui

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"tlsgate/internal/status"
)

// fixed is a Runtime with a set view.
type fixed struct{ v status.View }

func (f *fixed) Status() *status.View      { v := f.v; return &v }
func (f *fixed) History() *status.Recorder { return status.NewRecorder(nil) }
func (f *fixed) get(t *testing.T, path string) string {
	t.Helper()
	srv := httptest.NewServer(Handler(Options{Runtime: f, API: http.NotFoundHandler()}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestOverviewFleetRevision: a fleet member's Overview names the revision it serves;
// outside fleet mode nothing is said.
func TestOverviewFleetRevision(t *testing.T) {
	f := &fixed{v: status.View{FleetRevision: 9, Bounds: map[string]int{"clients": status.MaxClients}}}
	if page := f.get(t, "/ui/"); !strings.Contains(page, "Fleet revision <strong>9</strong>") {
		t.Errorf("fleet member's overview:\n%s", page)
	}
	f.v.FleetRevision = 0
	if page := f.get(t, "/ui/"); strings.Contains(page, "Fleet revision") {
		t.Errorf("overview outside fleet mode names a revision:\n%s", page)
	}
}

// TestEscaping: a client certificate's subject is the client's to choose; it is shown as
// text, never as markup.
func TestEscaping(t *testing.T) {
	evil := `<script>alert(1)</script><img src=x onerror=alert(2)>`
	f := &fixed{v: status.View{
		Clients:  []status.Client{{Subject: "CN=" + evil, CommonName: evil, Serial: "01", Fingerprint: "ab"}},
		Refusals: []status.Refusal{{Seq: 1, Subject: "CN=" + evil, Reason: "unknown_ca"}},
	}}
	page := f.get(t, "/ui/clients?q="+"%3Cscript")
	if strings.Contains(page, "<script>alert") || strings.Contains(page, "<img src=x") {
		t.Fatalf("a certificate subject was rendered as markup:\n%s", page)
	}
	if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the subject is not shown:\n%s", page)
	}
}

// TestSessionExpires: a session ends SessionTTL after login; its cookie then opens
// nothing.
func TestSessionExpires(t *testing.T) {
	now := time.Now()
	h := Handler(Options{Runtime: &fixed{}, API: http.NotFoundHandler(), Token: "0123456789abcdef", Now: func() time.Time { return now }})
	login := httptest.NewRecorder()
	lr := httptest.NewRequest(http.MethodPost, "/ui/login", strings.NewReader("token=0123456789abcdef"))
	lr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	h.ServeHTTP(login, lr)
	req := func() string {
		r := httptest.NewRequest(http.MethodGet, "/ui/targets", nil)
		for _, c := range login.Result().Cookies() {
			r.AddCookie(c)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Body.String()
	}
	if login.Code != http.StatusSeeOther || strings.Contains(req(), `name="token"`) {
		t.Fatalf("login: %d", login.Code)
	}
	now = now.Add(SessionTTL)
	if !strings.Contains(req(), `name="token"`) {
		t.Fatal("an expired session still opens the console")
	}
}
