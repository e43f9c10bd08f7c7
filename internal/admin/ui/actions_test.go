package ui_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"

	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"tlsgate/internal/certfile"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
	"tlsgate/internal/server"
)

// session is a logged-in console client.
type session struct {
	e    *env
	c    *http.Client
	ck   *http.Cookie
	csrf string
}

func (e *env) session() *session {
	s := &session{e: e, c: client()}
	s.ck = e.login(s.c)
	m := csrfField.FindStringSubmatch(s.get("/ui/certificates"))
	if m == nil {
		e.t.Fatal("no CSRF token on the certificates page")
	}
	s.csrf = m[1]
	return s
}

func (s *session) get(path string) string {
	s.e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.e.admin()+path, nil)
	req.AddCookie(s.ck)
	resp, err := s.c.Do(req)
	if err != nil {
		s.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// upload posts the certificate form with files and fields; it returns the status and
// the page.
func (s *session) upload(fields map[string]string, files map[string][]byte) (int, string) {
	s.e.t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	_ = mw.WriteField("csrf", s.csrf)
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	for k, v := range files {
		w, _ := mw.CreateFormFile(k, k+".bin")
		_, _ = w.Write(v)
	}
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPost, s.e.admin()+"/ui/certificates", &b)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.AddCookie(s.ck)
	resp, err := s.c.Do(req)
	if err != nil {
		s.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(page)
}

// serverCN is the CN of the certificate the one-way listener presents now.
func (e *env) serverCN() string {
	c, err := tls.Dial("tcp", e.srv.Addr("public").String(), &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// TestUpload: the console replaces a server certificate from a PEM file holding the
// chain and the key, then from a PKCS#12 file with its password; a key that does not
// match and a wrong password are refused with the API's words, and nothing changes.
func TestUpload(t *testing.T) {
	e := newEnv(t)
	s := e.session()
	pemLeaf := e.ca.Issue("pem-site", pkitest.Server("localhost"))
	keyPEM, err := certfile.EncodeKeyPEM(pemLeaf.Key)
	if err != nil {
		t.Fatal(err)
	}
	other := e.ca.Issue("other", pkitest.Server("localhost"))
	otherKey, _ := certfile.EncodeKeyPEM(other.Key)
	if code, page := s.upload(map[string]string{"id": "site"}, map[string][]byte{"cert": certfile.EncodePEM(pemLeaf.Cert), "key": otherKey}); code != http.StatusBadRequest || !strings.Contains(page, "not applied") {
		t.Fatalf("a mismatched key: %d\n%s", code, page)
	}
	if cn := e.serverCN(); cn != "localhost" {
		t.Fatalf("after a refused upload the listener presents %q", cn)
	}
	both := append(certfile.EncodePEM(pemLeaf.Cert), keyPEM...)
	if code, page := s.upload(map[string]string{"id": "site"}, map[string][]byte{"cert": both}); code != http.StatusSeeOther {
		t.Fatalf("PEM upload: %d\n%s", code, page)
	}
	if cn := e.serverCN(); cn != "pem-site" {
		t.Fatalf("after the PEM upload the listener presents %q", cn)
	}
	p12Leaf := e.ca.Issue("p12-site", pkitest.Server("localhost"))
	p12, err := pkcs12.Modern2023.Encode(p12Leaf.Key, p12Leaf.Cert, nil, "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := s.upload(map[string]string{"id": "site", "password": "wrong"}, map[string][]byte{"cert": p12}); code != http.StatusBadRequest {
		t.Fatalf("a wrong PKCS#12 password: %d", code)
	}
	if code, page := s.upload(map[string]string{"id": "site", "password": "s3cret"}, map[string][]byte{"cert": p12}); code != http.StatusSeeOther {
		t.Fatalf("PKCS#12 upload: %d\n%s", code, page)
	}
	if cn := e.serverCN(); cn != "p12-site" {
		t.Fatalf("after the PKCS#12 upload the listener presents %q", cn)
	}
	if page := s.get("/ui/certificates"); !strings.Contains(page, "CN=p12-site") {
		t.Error("the certificates page does not show the uploaded certificate")
	}
}

// TestRemoveDenylistEntry: an entry from the config file is removed after a
// confirmation page, and the client it refused is served again.
func TestRemoveDenylistEntry(t *testing.T) {
	e := newEnv(t)
	s := e.session()
	if code := s.post("/ui/clients/deny", url.Values{"serial": {serial(e.bob)}, "note": {"test"}}); code != http.StatusSeeOther {
		t.Fatalf("deny: %d", code)
	}
	e.refused(e.bob, "denied")
	if page := s.get("/ui/denylist/remove?value=" + serial(e.bob)); !strings.Contains(page, "Remove this denylist entry?") {
		t.Fatalf("no confirmation page:\n%s", page)
	}
	if code := s.post("/ui/denylist/remove", url.Values{"value": {serial(e.bob)}}); code != http.StatusSeeOther {
		t.Fatalf("remove: %d", code)
	}
	if err := e.get("mutual", e.bob); err != nil {
		t.Fatalf("bob after the removal: %v", err)
	}
}

func (s *session) post(path string, form url.Values) int {
	s.e.t.Helper()
	form.Set("csrf", s.csrf)
	req, _ := http.NewRequest(http.MethodPost, s.e.admin()+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(s.ck)
	resp, err := s.c.Do(req)
	if err != nil {
		s.e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestMutualTLSAdmin: with admin.ssl, a verified client certificate opens the console
// without the login form and may act; a console without a token or admin.ssl is
// read-only.
func TestMutualTLSAdmin(t *testing.T) {
	dir := t.TempDir()
	ca := pkitest.New(t, "Admin Root", pki.ECDSAP256)
	ca.Issue("localhost", pkitest.Server("localhost", "127.0.0.1")).WritePair(t, dir, "server")
	pkitest.Write(t, dir, "ca.crt", ca.PEM())
	cfg := pkitest.Write(t, dir, "tlsgate.yaml", []byte(`admin: {listen: 127.0.0.1:0, ssl: {mode: mutual, server_certificates: [site], ca_certificate: operators}}
certificates:
  - {id: site, cert: server.crt, key: server.key}
  - {id: operators, ca: ca.crt}
`))
	srv := server.New(server.Options{ConfigPath: cfg})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	op := ca.Issue("operator")
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost",
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { c := op.TLS(); return &c, nil }}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(fmt.Sprintf("https://%s/ui/certificates", srv.AdminAddr()))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(page), `name="token"`) || !strings.Contains(string(page), "CN=operator") || !strings.Contains(string(page), `name="csrf"`) {
		t.Fatalf("the verified operator got:\n%s", page)
	}

	// The same server over plain HTTP without a token: pages but no forms.
	plain := pkitest.Write(t, dir, "plain.yaml", []byte(`admin: {listen: 127.0.0.1:0}
certificates:
  - {id: site, cert: server.crt, key: server.key}
`))
	ro := server.New(server.Options{ConfigPath: plain})
	if err := ro.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ro.Shutdown(context.Background()) })
	resp, err = http.Get(fmt.Sprintf("http://%s/ui/certificates", ro.AdminAddr()))
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "read-only") || strings.Contains(string(page), `name="csrf"`) {
		t.Fatalf("the console without a token:\n%s", page)
	}
	resp, err = http.PostForm(fmt.Sprintf("http://%s/ui/clients/deny", ro.AdminAddr()), url.Values{"serial": {"01"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a write to the read-only console: %d", resp.StatusCode)
	}
}
