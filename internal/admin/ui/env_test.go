package ui_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
	"tlsgate/internal/proxytest"
	"tlsgate/internal/server"
)

const token = "console-test-token-0123456789"

// env is a running tlsgate with a mutual and a one-way https listener in front of two
// counting HTTP targets, a CA with a CRL revoking "mallory", and an admin listener
// with a token.
type env struct {
	t       *testing.T
	dir     string
	ca      *pkitest.CA
	alice   *pkitest.Leaf // a good client, with a URI SAN
	bob     *pkitest.Leaf
	mallory *pkitest.Leaf // revoked
	srv     *server.Server
	sink    *proxytest.Sink
	targets [2]*target
}

// target is an HTTP backend that counts its requests.
type target struct {
	srv *httptest.Server
	n   atomic.Int64
}

func (tg *target) addr() string { return strings.TrimPrefix(tg.srv.URL, "http://") }

const config = `admin: {listen: 127.0.0.1:0, token_file: admin.token}
certificates:
  - {id: site, cert: server.crt, key: server.key}
  - {id: legacy, cert: legacy.crt, key: legacy.key}
  - {id: clients, ca: ca.crt, crl: [ca.crl]}
  - {id: partners, ca: partner.crt, crl_urls: [%s/partner.crl, %s/missing.crl]}
target_groups:
  - {id: web, targets: [{address: %s}, {address: %s}]}
listeners:
  - {id: mutual, protocol: https, listen: 127.0.0.1:0, target_group: web,
     rules: [{path: /admin/, allow: {cn: [alice]}}],
     ssl: {mode: mutual, server_certificates: [site], ca_certificate: clients}}
  - {id: public, protocol: https, listen: 127.0.0.1:0, target_group: web,
     domains: [{names: [localhost]}],
     ssl: {mode: one_way, server_certificates: [site]}}
`

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), sink: proxytest.NewSink()}
	e.ca = pkitest.New(t, "Console Test Root", pki.ECDSAP256)
	e.alice = e.ca.Issue("alice", pkitest.URI("spiffe://example.org/alice"))
	e.bob = e.ca.Issue("bob")
	e.mallory = e.ca.Issue("mallory")
	e.ca.Issue("localhost", pkitest.Server("localhost", "127.0.0.1")).WritePair(t, e.dir, "server")
	pkitest.Write(t, e.dir, "ca.crt", e.ca.PEM())
	pkitest.Write(t, e.dir, "ca.crl", e.ca.CRL(24*time.Hour, e.mallory.Cert))
	pkitest.Write(t, e.dir, "admin.token", []byte(token+"\n"))
	// A server certificate that expires in 10 days, and a CA bundle whose CRLs are
	// fetched: one URL serves a CRL, the other answers 404.
	e.ca.Issue("legacy.example", pkitest.Server("legacy.example"), pkitest.Valid(-time.Hour, 10*24*time.Hour)).WritePair(t, e.dir, "legacy")
	partner := pkitest.New(t, "Partner Root", pki.ECDSAP256)
	pkitest.Write(t, e.dir, "partner.crt", partner.PEM())
	partnerCRL := partner.CRL(48 * time.Hour)
	crls := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/partner.crl" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(partnerCRL)
	}))
	t.Cleanup(crls.Close)
	for i := range e.targets {
		tg := &target{}
		tg.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			tg.n.Add(1)
			_, _ = io.WriteString(w, "ok\n")
		}))
		t.Cleanup(tg.srv.Close)
		e.targets[i] = tg
	}
	cfg := pkitest.Write(t, e.dir, "tlsgate.yaml", fmt.Appendf(nil, config, crls.URL, crls.URL, e.targets[0].addr(), e.targets[1].addr()))
	e.srv = server.New(server.Options{ConfigPath: cfg, Log: e.sink.Logger()})
	if err := e.srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.srv.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return e
}

// admin is the console's base URL.
func (e *env) admin() string { return "http://" + e.srv.AdminAddr().String() }

// get makes one request to a listener on a new connection, presenting cert (nil: none).
func (e *env) get(listener string, cert *pkitest.Leaf) error {
	return e.getPath(listener, "/x", cert)
}

// getPath requests path on a listener on a new connection, presenting cert.
func (e *env) getPath(listener, path string, cert *pkitest.Leaf) error {
	cfg := &tls.Config{RootCAs: e.ca.Pool(), ServerName: "localhost"}
	if cert != nil {
		c := cert.TLS()
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
	}
	tr := &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + e.srv.Addr(listener).String() + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// refused makes a request that must be refused with reason, and waits for its
// handshake line (the runtime view has it by then).
func (e *env) refused(cert *pkitest.Leaf, reason string) {
	e.t.Helper()
	if err := e.get("mutual", cert); err == nil {
		e.t.Fatalf("a client that should get %s was served", reason)
	}
	e.sink.Next(e.t, map[string]any{"msg": "handshake", "listener": "mutual", "reason": reason})
}

// traffic makes the handshakes every page shows: alice served, mallory refused as
// revoked, a client without a certificate refused, and one one-way request.
func (e *env) traffic() {
	e.t.Helper()
	if err := e.get("mutual", e.alice); err != nil {
		e.t.Fatal(err)
	}
	if err := e.get("public", nil); err != nil {
		e.t.Fatal(err)
	}
	e.refused(e.mallory, "revoked")
	e.refused(nil, "no_client_cert")
	// bob is verified, but /admin/ allows only alice: a refused request, not handshake.
	if err := e.getPath("mutual", "/admin/x", e.bob); err == nil || !strings.Contains(err.Error(), "403") {
		e.t.Fatalf("bob on /admin/: %v, want 403", err)
	}
}

func serial(l *pkitest.Leaf) string { return strings.ToUpper(l.Cert.SerialNumber.Text(16)) }

// denied reports whether the running denylist has serial s.
func (e *env) denied(s string) bool {
	for _, d := range e.srv.Status().Denylist {
		if strings.EqualFold(d.Value, s) {
			return true
		}
	}
	return false
}

// client is an HTTP client that does not follow redirects, with a cookie jar.
func client() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// login opens a console session over plain HTTP and returns its cookie.
func (e *env) login(c *http.Client) *http.Cookie {
	e.t.Helper()
	resp, err := c.PostForm(e.admin()+"/ui/login", url.Values{"token": {token}})
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.Name == "tlsgate_console" {
			return ck
		}
	}
	e.t.Fatalf("login: %d, no session cookie", resp.StatusCode)
	return nil
}

// keepAlive opens an HTTP/1.1 connection to the mutual listener as cert and makes one
// request on it; the connection stays open.
func (e *env) keepAlive(cert *pkitest.Leaf) net.Conn {
	e.t.Helper()
	c := cert.TLS()
	conn, err := tls.Dial("tcp", e.srv.Addr("mutual").String(), &tls.Config{RootCAs: e.ca.Pool(), ServerName: "localhost",
		NextProtos: []string{"http/1.1"}, GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, "GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return conn
}

// closed fails the test unless the server closes conn within 10 seconds.
func (e *env) closed(conn net.Conn) {
	e.t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := conn.Read(make([]byte, 1))
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		e.t.Fatal("the denied client's open connection stayed open")
	}
}
