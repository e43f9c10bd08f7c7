package ui

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"tlsgate/internal/status"
)

// answer is the management API's reply to a change.
type answer struct {
	code     int
	Error    string          `json:"error"`
	Problems []string        `json:"problems"`
	Warnings []string        `json:"warnings"`
	raw      json.RawMessage // the body, for GETs
}

// recorder is the ResponseWriter an API call from the console is served into.
type recorder struct {
	h    http.Header
	code int
	body bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.h }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(code int)        { r.code = code }

// call sends a request to the management API's own handlers: a console change is
// checked, written and applied as the API call would be.
func (c *console) call(r *http.Request, method, path string, body any) answer {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return answer{code: http.StatusInternalServerError, Error: err.Error()}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(r.Context(), method, path, rd)
	if err != nil {
		return answer{code: http.StatusInternalServerError, Error: err.Error()}
	}
	req.RemoteAddr, req.TLS = r.RemoteAddr, r.TLS
	req.Header.Set("Content-Type", "application/json")
	rec := &recorder{h: http.Header{}, code: http.StatusOK}
	c.o.API.ServeHTTP(rec, req)
	a := answer{code: rec.code, raw: rec.body.Bytes()}
	if rec.code >= 300 {
		_ = json.Unmarshal(rec.body.Bytes(), &a)
		if a.Error == "" {
			a.Error = strings.TrimSpace(rec.body.String())
		}
	}
	return a
}

// failed shows a rejected change on the page it came from.
func (c *console) failed(w http.ResponseWriter, r *http.Request, p principal, name, title string, a answer) {
	pg := c.newPage(r, p, title, name)
	pg.Error, pg.Errors = "The change was not applied: "+a.Error, a.Problems
	c.render(w, a.code, name, pg)
}

// findClient returns the recent client with fingerprint fp.
func findClient(v *status.View, fp string) *status.Client {
	i := slices.IndexFunc(v.Clients, func(c status.Client) bool { return c.Fingerprint == fp })
	if i < 0 {
		return nil
	}
	return &v.Clients[i]
}

// confirmDeny asks before denying a client.
func (c *console) confirmDeny(w http.ResponseWriter, r *http.Request, p principal) {
	pg := c.newPage(r, p, "Deny a client", "clients")
	cl := findClient(pg.View, r.URL.Query().Get("fp"))
	if cl == nil {
		pg.Error = "That client is no longer in the recent list; search for it again."
		c.render(w, http.StatusNotFound, "clients", pg)
		return
	}
	pg.Confirm = &confirm{
		Heading: "Deny this client?",
		Lines: [][2]string{{"Subject", cl.Subject}, {"Issuer", cl.Issuer}, {"Serial", cl.Serial},
			{"SHA-256 fingerprint", cl.Fingerprint}, {"Last seen", ago(cl.LastSeen) + " on " + cl.Listener}},
		Effect: "Its serial is added to the denylist: every listener refuses it from its next handshake (reason denied), " +
			"and its open connections are closed now. The change is written to the configuration file.",
		Action: "/ui/clients/deny", Fields: map[string]string{"fp": cl.Fingerprint, "serial": cl.Serial},
		Button: "Deny", Note: true, Cancel: "/ui/clients",
	}
	c.render(w, http.StatusOK, "confirm", pg)
}

// deny adds a client's serial to the denylist through POST /api/v1/denylist.
func (c *console) deny(w http.ResponseWriter, r *http.Request, p principal) {
	serial := r.PostFormValue("serial")
	if serial == "" {
		http.Error(w, "no serial given", http.StatusBadRequest)
		return
	}
	if a := c.call(r, http.MethodPost, "/api/v1/denylist", map[string]string{"serial": serial}); a.code >= 300 {
		c.failed(w, r, p, "clients", "Clients", a)
		return
	}
	c.o.Runtime.History().Denied(serial, trim(r.PostFormValue("note"), 200), p.who)
	http.Redirect(w, r, "/ui/denylist?done=denied", http.StatusSeeOther)
}

// confirmRemove asks before removing a denylist entry.
func (c *console) confirmRemove(w http.ResponseWriter, r *http.Request, p principal) {
	pg := c.newPage(r, p, "Remove a denylist entry", "denylist")
	v := r.URL.Query().Get("value")
	i := slices.IndexFunc(pg.View.Denylist, func(e status.DenyEntry) bool { return e.Value == v })
	if i < 0 {
		pg.Error = "That entry is not on the denylist."
		c.render(w, http.StatusNotFound, "denylist", pg)
		return
	}
	e := pg.View.Denylist[i]
	pg.Confirm = &confirm{
		Heading: "Remove this denylist entry?",
		Lines:   [][2]string{{"Kind", e.Kind}, {"Value", e.Value}, {"Why", e.Note}},
		Effect:  "Certificates it matched are accepted again from their next handshake, if nothing else refuses them.",
		Action:  "/ui/denylist/remove", Fields: map[string]string{"value": e.Value},
		Button: "Remove", Cancel: "/ui/denylist",
	}
	c.render(w, http.StatusOK, "confirm", pg)
}

// remove deletes a denylist entry through DELETE /api/v1/denylist/{value}.
func (c *console) remove(w http.ResponseWriter, r *http.Request, p principal) {
	v := r.PostFormValue("value")
	if a := c.call(r, http.MethodDelete, "/api/v1/denylist/"+url.PathEscape(v), nil); a.code >= 300 {
		c.failed(w, r, p, "denylist", "Denylist", a)
		return
	}
	http.Redirect(w, r, "/ui/denylist?done=removed", http.StatusSeeOther)
}

// setWeight drains a target (weight 0) or restores its weight before the drain, by
// replacing its group through PUT /api/v1/target_groups/{id}.
func (c *console) setWeight(w http.ResponseWriter, r *http.Request, p principal) {
	group, addr, drain := r.PostFormValue("group"), r.PostFormValue("address"), r.PostFormValue("drain") == "1"
	path := "/api/v1/target_groups/" + url.PathEscape(group)
	a := c.call(r, http.MethodGet, path, nil)
	var g map[string]any
	if a.code >= 300 || json.Unmarshal(a.raw, &g) != nil {
		c.failed(w, r, p, "targets", "Targets", a)
		return
	}
	ts, _ := g["targets"].([]any)
	key := group + "\x00" + addr
	found := false
	for _, t := range ts {
		t, _ := t.(map[string]any)
		if t == nil || t["address"] != addr {
			continue
		}
		found = true
		old, _ := t["weight"].(float64)
		c.mu.Lock()
		if drain {
			if old > 0 {
				c.weights[key] = int(old)
			}
			t["weight"] = 0
		} else {
			t["weight"] = max(c.weights[key], 1)
		}
		c.mu.Unlock()
	}
	if !found {
		c.failed(w, r, p, "targets", "Targets", answer{code: http.StatusNotFound, Error: fmt.Sprintf("no target %s in group %s", addr, group)})
		return
	}
	if a := c.call(r, http.MethodPut, path, g); a.code >= 300 {
		c.failed(w, r, p, "targets", "Targets", a)
		return
	}
	done := "restored"
	if drain {
		done = "drained"
	}
	http.Redirect(w, r, "/ui/targets?done="+done, http.StatusSeeOther)
}

// upload sends a certificate (PEM with its key, or PKCS#12 with its password) through
// POST /api/v1/certificates, or PUT /api/v1/certificates/{id} when the id exists.
func (c *console) upload(w http.ResponseWriter, r *http.Request, p principal) {
	id := strings.TrimSpace(r.PostFormValue("id"))
	cert, err := formFile(r, "cert")
	if err != nil || len(cert) == 0 {
		c.failed(w, r, p, "certificates", "Certificates", answer{code: http.StatusBadRequest, Error: "choose a certificate file"})
		return
	}
	key, _ := formFile(r, "key")
	body := map[string]string{"id": id}
	if bytes.Contains(cert, []byte("-----BEGIN")) {
		chain, inKey := splitKey(cert)
		if len(key) == 0 {
			key = inKey
		}
		body["cert"], body["key"] = string(chain), string(key)
	} else {
		body["p12"], body["password"] = base64.StdEncoding.EncodeToString(cert), r.PostFormValue("password")
	}
	method, path := http.MethodPost, "/api/v1/certificates"
	if slices.ContainsFunc(c.o.Runtime.Status().Certificates, func(x status.Certificate) bool { return x.ID == id }) {
		method, path = http.MethodPut, path+"/"+url.PathEscape(id)
	}
	if a := c.call(r, method, path, body); a.code >= 300 {
		c.failed(w, r, p, "certificates", "Certificates", a)
		return
	}
	http.Redirect(w, r, "/ui/certificates?done=uploaded", http.StatusSeeOther)
}

// formFile reads an uploaded file of the multipart form; nil when none was chosen.
func formFile(r *http.Request, name string) ([]byte, error) {
	f, _, err := r.FormFile(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 4<<20))
}

// splitKey separates the private key blocks of a PEM file from its certificates, for a
// file holding both.
func splitKey(data []byte) (certs, key []byte) {
	for len(data) > 0 {
		i := bytes.Index(data, []byte("-----BEGIN "))
		if i < 0 {
			break
		}
		end := bytes.Index(data[i:], []byte("-----END "))
		if end < 0 {
			break
		}
		stop := i + end + bytes.IndexByte(data[i+end:], '\n') + 1
		if stop <= i+end {
			stop = len(data)
		}
		block := data[i:stop]
		if bytes.Contains(block[:min(len(block), 40)], []byte("PRIVATE KEY")) {
			key = append(key, block...)
		} else {
			certs = append(certs, block...)
		}
		data = data[stop:]
	}
	return certs, key
}

// trim bounds a free-text note.
func trim(s string, n int) string {
	r := []rune(strings.Join(strings.Fields(s), " "))
	return string(r[:min(len(r), n)])
}
