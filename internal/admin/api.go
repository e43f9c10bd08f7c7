package admin

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"tlsgate/internal/certfile"
	"tlsgate/internal/config"
)

type api struct{ c Controller }

// httpError carries a status code out of a Controller.Update mutation.
type httpError struct {
	code int
	err  error
}

func (e *httpError) Error() string { return e.err.Error() }

func notFound(kind, id string) error {
	return &httpError{http.StatusNotFound, fmt.Errorf("no %s %q", kind, id)}
}

func conflict(kind, id string) error {
	return &httpError{http.StatusConflict, fmt.Errorf("%s %q exists; use PUT to replace it", kind, id)}
}

func (a *api) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/config", a.getConfig)
	for _, k := range kinds {
		mux.HandleFunc("GET /api/v1/"+k.name, a.list(k))
		mux.HandleFunc("GET /api/v1/"+k.name+"/{id}", a.get(k))
		mux.HandleFunc("DELETE /api/v1/"+k.name+"/{id}", a.remove(k))
		if k.name != "certificates" {
			mux.HandleFunc("POST /api/v1/"+k.name, a.put(k, false))
			mux.HandleFunc("PUT /api/v1/"+k.name+"/{id}", a.put(k, true))
		}
	}
	mux.HandleFunc("POST /api/v1/certificates", a.putCertificate(false))
	mux.HandleFunc("PUT /api/v1/certificates/{id}", a.putCertificate(true))
	mux.HandleFunc("GET /api/v1/target_groups/{id}/targets", a.getTargets)
	mux.HandleFunc("GET /api/v1/target_groups/{id}/targets/{address}", a.getTargets)
	mux.HandleFunc("POST /api/v1/target_groups/{id}/targets", a.addTarget)
	mux.HandleFunc("PUT /api/v1/target_groups/{id}/targets/{address}", a.replaceTarget)
	mux.HandleFunc("DELETE /api/v1/target_groups/{id}/targets/{address}", a.removeTarget)
	mux.HandleFunc("GET /api/v1/denylist", a.getDenylist)
	mux.HandleFunc("POST /api/v1/denylist", a.deny)
	mux.HandleFunc("DELETE /api/v1/denylist/{value}", a.undeny)
}

// kind is one collection of the config, addressed by id.
type kind struct {
	name string
	// items returns pointers into the config: id → element, in order.
	ids    func(c *config.Config) []string
	get    func(c *config.Config, i int) any
	del    func(c *config.Config, i int)
	decode func(r io.Reader) (string, func(c *config.Config, i int), error) // id, set-or-append
}

var kinds = []kind{
	{
		name: "certificates",
		ids: func(c *config.Config) []string {
			return idsOf(c.Certificates, func(x config.Certificate) string { return x.ID })
		},
		get: func(c *config.Config, i int) any { return c.Certificates[i] },
		del: func(c *config.Config, i int) { c.Certificates = slices.Delete(c.Certificates, i, i+1) },
	},
	{
		name: "listeners",
		ids: func(c *config.Config) []string {
			return idsOf(c.Listeners, func(x config.Listener) string { return x.ID })
		},
		get: func(c *config.Config, i int) any { return c.Listeners[i] },
		del: func(c *config.Config, i int) { c.Listeners = slices.Delete(c.Listeners, i, i+1) },
		decode: func(r io.Reader) (string, func(*config.Config, int), error) {
			var l config.Listener
			if err := decodeStrict(r, &l); err != nil {
				return "", nil, err
			}
			return l.ID, func(c *config.Config, i int) {
				if i < 0 {
					c.Listeners = append(c.Listeners, l)
				} else {
					c.Listeners[i] = l
				}
			}, nil
		},
	},
	{
		name: "target_groups",
		ids: func(c *config.Config) []string {
			return idsOf(c.TargetGroups, func(x config.TargetGroup) string { return x.ID })
		},
		get: func(c *config.Config, i int) any { return c.TargetGroups[i] },
		del: func(c *config.Config, i int) { c.TargetGroups = slices.Delete(c.TargetGroups, i, i+1) },
		decode: func(r io.Reader) (string, func(*config.Config, int), error) {
			var g config.TargetGroup
			if err := decodeStrict(r, &g); err != nil {
				return "", nil, err
			}
			return g.ID, func(c *config.Config, i int) {
				if i < 0 {
					c.TargetGroups = append(c.TargetGroups, g)
				} else {
					c.TargetGroups[i] = g
				}
			}, nil
		},
	},
}

func idsOf[T any](xs []T, id func(T) string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = id(x)
	}
	return out
}

func decodeStrict(r io.Reader, v any) error {
	dec := json.NewDecoder(io.LimitReader(r, 4<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &httpError{http.StatusBadRequest, fmt.Errorf("request body: %w", err)}
	}
	return nil
}

// update runs a change through the controller and writes the answer; it reports
// whether the change was applied.
func (a *api) update(w http.ResponseWriter, code int, mutate func(*config.Config) error, result func() any) bool {
	warnings, err := a.c.Update(mutate)
	if err != nil {
		if he, ok := errors.AsType[*httpError](err); ok {
			writeError(w, he.code, he.err)
			return false
		}
		writeError(w, http.StatusBadRequest, err)
		return false
	}
	body := map[string]any{"applied": true}
	if result != nil {
		body["result"] = result()
	}
	var ws []string
	for _, p := range warnings {
		ws = append(ws, p.String())
	}
	if len(ws) > 0 {
		body["warnings"] = ws
	}
	writeJSON(w, code, body)
	return true
}

func (a *api) getConfig(w http.ResponseWriter, _ *http.Request) {
	cfg, err := a.c.Config()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, cfg)
}

func (a *api) list(k kind) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		cfg, err := a.c.Config()
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		out := []any{}
		for i := range k.ids(cfg) {
			out = append(out, k.get(cfg, i))
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func (a *api) get(k kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cfg, err := a.c.Config()
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		i := slices.Index(k.ids(cfg), r.PathValue("id"))
		if i < 0 {
			writeError(w, http.StatusNotFound, notFound(strings.TrimSuffix(k.name, "s"), r.PathValue("id")))
			return
		}
		writeJSON(w, http.StatusOK, k.get(cfg, i))
	}
}

func (a *api) remove(k kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		a.update(w, http.StatusOK, func(c *config.Config) error {
			i := slices.Index(k.ids(c), id)
			if i < 0 {
				return notFound(strings.TrimSuffix(k.name, "s"), id)
			}
			k.del(c, i)
			return nil
		}, nil)
	}
}

// put creates (POST) or replaces (PUT /{id}) a listener or target group.
func (a *api) put(k kind, replace bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, set, err := k.decode(r.Body)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		if replace && id != r.PathValue("id") {
			writeError(w, http.StatusBadRequest, fmt.Errorf("body id %q differs from the URL's %q", id, r.PathValue("id")))
			return
		}
		code := http.StatusCreated
		if replace {
			code = http.StatusOK
		}
		a.update(w, code, func(c *config.Config) error {
			i := slices.Index(k.ids(c), id)
			switch {
			case replace && i < 0:
				return notFound(strings.TrimSuffix(k.name, "s"), id)
			case !replace && i >= 0:
				return conflict(strings.TrimSuffix(k.name, "s"), id)
			}
			set(c, i)
			return nil
		}, nil)
	}
}

// certUpload is the body of POST/PUT /api/v1/certificates: a server certificate (cert +
// key PEM, or a base64 PKCS#12 with its password) or a CA bundle (ca PEM, CRLs).
type certUpload struct {
	ID        string           `json:"id"`
	Cert      string           `json:"cert,omitempty"`
	Key       string           `json:"key,omitempty"`
	P12       string           `json:"p12,omitempty"`
	Password  string           `json:"password,omitempty"`
	CA        string           `json:"ca,omitempty"`
	CRL       []string         `json:"crl,omitempty"`
	CRLPolicy config.CRLPolicy `json:"crl_policy,omitempty"`
}

// putCertificate writes the uploaded files under certs/ with new names (the running
// config keeps its own files until the change is applied) and points the entry at them.
func (a *api) putCertificate(replace bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var u certUpload
		if err := decodeStrict(r.Body, &u); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		if replace && u.ID != r.PathValue("id") {
			writeError(w, http.StatusBadRequest, fmt.Errorf("body id %q differs from the URL's %q", u.ID, r.PathValue("id")))
			return
		}
		entry, err := a.writeUpload(u)
		if err != nil {
			a.removeUpload(entry)
			writeError(w, http.StatusBadRequest, err)
			return
		}
		code := http.StatusCreated
		if replace {
			code = http.StatusOK
		}
		applied := a.update(w, code, func(c *config.Config) error {
			i := slices.IndexFunc(c.Certificates, func(x config.Certificate) bool { return x.ID == u.ID })
			switch {
			case replace && i < 0:
				return notFound("certificate", u.ID)
			case !replace && i >= 0:
				return conflict("certificate", u.ID)
			case i >= 0:
				c.Certificates[i] = entry
			default:
				c.Certificates = append(c.Certificates, entry)
			}
			return nil
		}, func() any { return entry })
		if !applied {
			a.removeUpload(entry) // a rejected upload leaves no files behind
		}
	}
}

// removeUpload deletes the files writeUpload wrote for e.
func (a *api) removeUpload(e config.Certificate) {
	for _, f := range append([]string{e.Cert, e.Key, e.CA, e.PasswordFile}, e.CRL...) {
		if f != "" {
			_ = os.Remove(filepath.Join(a.c.ConfigDir(), f))
		}
	}
}

func (a *api) writeUpload(u certUpload) (config.Certificate, error) {
	e := config.Certificate{ID: u.ID, CRLPolicy: u.CRLPolicy}
	if u.ID == "" || strings.ContainsAny(u.ID, "/\\") || strings.HasPrefix(u.ID, ".") {
		return e, fmt.Errorf("id %q: it names the uploaded files under certs/, so it must not be empty, begin with '.' or hold '/' or '\\'", u.ID)
	}
	dir := filepath.Join(a.c.ConfigDir(), "certs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return e, err
	}
	stamp := strconv.FormatInt(time.Now().UnixNano(), 36)
	write := func(ext string, data []byte, perm os.FileMode) (string, error) {
		name := filepath.Join("certs", u.ID+"."+stamp+ext)
		return name, os.WriteFile(filepath.Join(a.c.ConfigDir(), name), data, perm)
	}
	var err error
	switch {
	case u.P12 != "":
		data, derr := base64.StdEncoding.DecodeString(u.P12)
		if derr != nil {
			return e, fmt.Errorf("p12: not base64: %w", derr)
		}
		if _, _, perr := certfile.ParsePKCS12(data, u.Password); perr != nil {
			return e, fmt.Errorf("p12: %w", perr)
		}
		// The password goes to a file of its own (0600), not into the config in clear.
		if e.Cert, err = write(".p12", data, 0o600); err == nil && u.Password != "" {
			e.PasswordFile, err = write(".password", []byte(u.Password+"\n"), 0o600)
		}
	case u.Cert != "":
		if _, err := certfile.ServerPair([]byte(u.Cert), []byte(u.Key), ""); err != nil {
			return e, fmt.Errorf("cert/key: %w", err)
		}
		if e.Cert, err = write(".crt", []byte(u.Cert), 0o644); err == nil {
			e.Key, err = write(".key", []byte(u.Key), 0o600)
		}
	case u.CA != "":
		if e.CA, err = write(".ca.crt", []byte(u.CA), 0o644); err != nil {
			return e, err
		}
		for i, crl := range u.CRL {
			name, werr := write(fmt.Sprintf(".%d.crl", i), []byte(crl), 0o644)
			if werr != nil {
				return e, werr
			}
			e.CRL = append(e.CRL, name)
		}
	default:
		return e, errors.New("give cert and key (PEM), p12 (base64) with password, or ca (PEM) with optional crl")
	}
	return e, err
}

func (a *api) addTarget(w http.ResponseWriter, r *http.Request) {
	var t config.Target
	if err := decodeStrict(r.Body, &t); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	id := r.PathValue("id")
	a.update(w, http.StatusCreated, func(c *config.Config) error {
		i := slices.IndexFunc(c.TargetGroups, func(g config.TargetGroup) bool { return g.ID == id })
		if i < 0 {
			return notFound("target group", id)
		}
		if slices.ContainsFunc(c.TargetGroups[i].Targets, func(x config.Target) bool { return x.Address == t.Address }) {
			return conflict("target", t.Address)
		}
		c.TargetGroups[i].Targets = append(c.TargetGroups[i].Targets, t)
		return nil
	}, nil)
}

// getTargets lists a group's targets, or answers one (…/targets/{address}).
func (a *api) getTargets(w http.ResponseWriter, r *http.Request) {
	cfg, err := a.c.Config()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	id, addr := r.PathValue("id"), r.PathValue("address")
	i := slices.IndexFunc(cfg.TargetGroups, func(g config.TargetGroup) bool { return g.ID == id })
	if i < 0 {
		writeError(w, http.StatusNotFound, notFound("target group", id))
		return
	}
	ts := cfg.TargetGroups[i].Targets
	if addr == "" {
		writeJSON(w, http.StatusOK, append([]config.Target{}, ts...))
		return
	}
	j := slices.IndexFunc(ts, func(x config.Target) bool { return x.Address == addr })
	if j < 0 {
		writeError(w, http.StatusNotFound, notFound("target", addr))
		return
	}
	writeJSON(w, http.StatusOK, ts[j])
}

// replaceTarget replaces one target of a group (its weight, say); the body's address,
// when given, must be the URL's.
func (a *api) replaceTarget(w http.ResponseWriter, r *http.Request) {
	var t config.Target
	if err := decodeStrict(r.Body, &t); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	id, addr := r.PathValue("id"), r.PathValue("address")
	if t.Address == "" {
		t.Address = addr
	}
	if t.Address != addr {
		writeError(w, http.StatusBadRequest, fmt.Errorf("body address %q differs from the URL's %q", t.Address, addr))
		return
	}
	a.update(w, http.StatusOK, func(c *config.Config) error {
		i, j, err := findTarget(c, id, addr)
		if err != nil {
			return err
		}
		c.TargetGroups[i].Targets[j] = t
		return nil
	}, nil)
}

// findTarget returns the indexes of group id and of its target addr in c, or a not-found
// error naming the one that is missing.
func findTarget(c *config.Config, id, addr string) (group, target int, err error) {
	i := slices.IndexFunc(c.TargetGroups, func(g config.TargetGroup) bool { return g.ID == id })
	if i < 0 {
		return 0, 0, notFound("target group", id)
	}
	j := slices.IndexFunc(c.TargetGroups[i].Targets, func(x config.Target) bool { return x.Address == addr })
	if j < 0 {
		return 0, 0, notFound("target", addr)
	}
	return i, j, nil
}

func (a *api) removeTarget(w http.ResponseWriter, r *http.Request) {
	id, addr := r.PathValue("id"), r.PathValue("address")
	a.update(w, http.StatusOK, func(c *config.Config) error {
		i, j, err := findTarget(c, id, addr)
		if err != nil {
			return err
		}
		c.TargetGroups[i].Targets = slices.Delete(c.TargetGroups[i].Targets, j, j+1)
		return nil
	}, nil)
}

func (a *api) getDenylist(w http.ResponseWriter, _ *http.Request) {
	cfg, err := a.c.Config()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, cfg.Denylist)
}

// denyBody names a certificate to refuse at once: its serial or its SPKI SHA-256.
type denyBody struct {
	Serial     string `json:"serial,omitempty"`
	SPKISHA256 string `json:"spki_sha256,omitempty"`
}

func (a *api) deny(w http.ResponseWriter, r *http.Request) {
	var b denyBody
	if err := decodeStrict(r.Body, &b); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if (b.Serial == "") == (b.SPKISHA256 == "") {
		writeError(w, http.StatusBadRequest, errors.New("give serial or spki_sha256"))
		return
	}
	a.update(w, http.StatusCreated, func(c *config.Config) error {
		if b.Serial != "" && !slices.ContainsFunc(c.Denylist.Serials, sameDenied(b.Serial)) {
			c.Denylist.Serials = append(c.Denylist.Serials, b.Serial)
		}
		if b.SPKISHA256 != "" && !slices.ContainsFunc(c.Denylist.SPKISHA256, sameDenied(b.SPKISHA256)) {
			c.Denylist.SPKISHA256 = append(c.Denylist.SPKISHA256, b.SPKISHA256)
		}
		return nil
	}, nil)
}

// sameDenied matches denylist values as the data path does: hex digits in any case,
// with or without colons ("5a:3f" is "5A3F"). An operator deleting the serial openssl
// printed must not find the entry still there because the case differs.
func sameDenied(v string) func(string) bool {
	norm := func(s string) string { return strings.ToUpper(strings.ReplaceAll(s, ":", "")) }
	v = norm(v)
	return func(s string) bool { return norm(s) == v }
}

func (a *api) undeny(w http.ResponseWriter, r *http.Request) {
	v := r.PathValue("value")
	a.update(w, http.StatusOK, func(c *config.Config) error {
		n := len(c.Denylist.Serials) + len(c.Denylist.SPKISHA256)
		c.Denylist.Serials = slices.DeleteFunc(c.Denylist.Serials, sameDenied(v))
		c.Denylist.SPKISHA256 = slices.DeleteFunc(c.Denylist.SPKISHA256, sameDenied(v))
		if len(c.Denylist.Serials)+len(c.Denylist.SPKISHA256) == n {
			return notFound("denylist entry", v)
		}
		return nil
	}, nil)
}
