package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"tlsgate/internal/status"
)

// page is what every template gets.
type page struct {
	Title  string
	Active string // the nav entry to mark
	Who    string
	CSRF   string // "" when the caller may not write
	Logout bool   // the caller has a session to end
	Next   string // login: where to go after
	Notice string // a done action, from ?done=
	Error  string
	View   *status.View

	Query   string          // clients: the search
	Found   []status.Client // clients: the search's matches
	Confirm *confirm        // the confirmation page of a destructive action
	Errors  []string        // problems of a rejected change
	More    int             // clients: how many more than the page shows
	Now     time.Time
}

// confirm is a confirmation page: what will happen, and a form that does it.
type confirm struct {
	Heading string
	Lines   [][2]string // label, value
	Effect  string
	Action  string
	Fields  map[string]string // hidden fields
	Button  string
	Note    bool // ask for a reason
	Cancel  string
}

var funcs = template.FuncMap{
	"ago":  ago,
	"date": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"days": days,
	"join": strings.Join,
	"short": func(s string) string {
		if len(s) > 16 {
			return s[:16] + "…"
		}
		return s
	},
	"expiring": expiring,
	"zero":     func(t time.Time) bool { return t.IsZero() },
}

// parsePages builds one template set per page: the layout with the page's content.
func parsePages() map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, name := range []string{"login", "overview", "certificates", "clients", "targets", "denylist", "confirm"} {
		out[name] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/"+name+".html"))
	}
	return out
}

// render writes a page; a template error becomes a 500 without a half-written page.
func (c *console) render(w http.ResponseWriter, code int, name string, p *page) {
	var b bytes.Buffer
	if err := c.pages[name].Execute(&b, p); err != nil {
		http.Error(w, "rendering the page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = b.WriteTo(w)
}

// pageRows is how many refusals and clients the Clients page lists, newest first.
const pageRows = 200

// notices are the messages a redirect after an action may show (?done=): fixed
// words, so no caller-given text is echoed into the page.
var notices = map[string]string{
	"denied":   "The client was added to the denylist: it is refused from its next handshake, and its open connections were closed.",
	"removed":  "The denylist entry was removed.",
	"drained":  "The target was drained (weight 0): it gets no new connections or requests.",
	"restored": "The target was restored to its weight.",
	"uploaded": "The certificate was uploaded and applied.",
}

// newPage starts a page with the caller and the running view.
func (c *console) newPage(r *http.Request, p principal, title, active string) *page {
	return &page{Title: title, Active: active, Who: p.who, CSRF: c.csrf(p), Logout: p.sess != "", View: c.o.Runtime.Status(),
		Notice: notices[r.URL.Query().Get("done")], Now: c.o.Now()}
}

func (c *console) overview(w http.ResponseWriter, r *http.Request, p principal) {
	c.render(w, http.StatusOK, "overview", c.newPage(r, p, "Overview", "overview"))
}

func (c *console) certificates(w http.ResponseWriter, r *http.Request, p principal) {
	c.render(w, http.StatusOK, "certificates", c.newPage(r, p, "Certificates", "certificates"))
}

func (c *console) clients(w http.ResponseWriter, r *http.Request, p principal) {
	pg := c.newPage(r, p, "Clients", "clients")
	if pg.Query = strings.TrimSpace(r.URL.Query().Get("q")); pg.Query != "" {
		pg.Found = status.Search(pg.View.Clients, pg.Query)
	}
	// The page shows the newest; the search and GET /api/v1/status cover all.
	if len(pg.View.Refusals) > pageRows {
		pg.View.Refusals = pg.View.Refusals[:pageRows]
	}
	if len(pg.View.Clients) > pageRows {
		pg.More, pg.View.Clients = len(pg.View.Clients)-pageRows, pg.View.Clients[:pageRows]
	}
	c.render(w, http.StatusOK, "clients", pg)
}

// refusals serves the live refusal list: those newer than ?after=, newest first.
func (c *console) refusals(w http.ResponseWriter, r *http.Request, _ principal) {
	after, _ := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
	rs := c.o.Runtime.History().RefusalsAfter(after)
	if len(rs) > 100 {
		rs = rs[:100]
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(rs)
}

func (c *console) targets(w http.ResponseWriter, r *http.Request, p principal) {
	c.render(w, http.StatusOK, "targets", c.newPage(r, p, "Targets", "targets"))
}

func (c *console) denylist(w http.ResponseWriter, r *http.Request, p principal) {
	c.render(w, http.StatusOK, "denylist", c.newPage(r, p, "Denylist", "denylist"))
}

// expiring counts the server certificates and CA certificates that expire within 30
// days (or have expired).
func expiring(v *status.View) int {
	n := 0
	for _, c := range v.Certificates {
		if c.Soon {
			n++
		}
	}
	for _, b := range v.CABundles {
		for _, c := range b.CAs {
			if c.Soon {
				n++
			}
		}
	}
	return n
}

// ago is a past time as a short relative phrase.
func ago(t time.Time) string {
	d := time.Since(t)
	switch {
	case t.IsZero():
		return "never"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// days is a days-left count in words.
func days(n int) string {
	switch {
	case n < 0:
		return fmt.Sprintf("expired %d days ago", -n)
	case n == 0:
		return "expires today"
	case n == 1:
		return "1 day left"
	}
	return fmt.Sprintf("%d days left", n)
}
