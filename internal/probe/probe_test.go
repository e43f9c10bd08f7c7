package probe_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"tlsgate/internal/certfile"
	"tlsgate/internal/clientauth"
	"tlsgate/internal/demo"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
	"tlsgate/internal/porttest"
	"tlsgate/internal/probe"
	"tlsgate/internal/proxytest"
	"tlsgate/internal/tooltest"
)

// fixture is a PKI with files for openssl: root CA, intermediate, a foreign CA, server
// certificates good and bad, client certificates good, foreign and revoked, and a CRL.
type fixture struct {
	dir                 string
	ca, inter, other    *pkitest.CA
	alice, eve, mallory *pkitest.Leaf
	carol               *pkitest.Leaf // from a CA named as ca, with another key
	server              *pkitest.Leaf
	path                func(name string) string
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{dir: t.TempDir()}
	f.path = func(n string) string { return filepath.Join(f.dir, n) }
	f.ca = pkitest.New(t, "probe root", pki.ECDSAP256)
	f.inter = f.ca.Intermediate("probe intermediate")
	f.other = pkitest.New(t, "other root", pki.ECDSAP256)
	f.server = f.inter.Issue("localhost", pkitest.Server("localhost", "127.0.0.1"))
	f.server.WritePair(t, f.dir, "server")
	pkitest.Write(t, f.dir, "server-leaf.crt", certfile.EncodePEM(f.server.Cert))
	f.inter.Issue("old", pkitest.Server("localhost"), pkitest.Valid(-48*time.Hour, -time.Hour)).WritePair(t, f.dir, "expired")
	selfCA := pkitest.New(t, "localhost", pki.ECDSAP256)
	pkitest.Write(t, f.dir, "self.crt", selfCA.PEM())
	kp, err := certfile.EncodeKeyPEM(selfCA.Key)
	if err != nil {
		t.Fatal(err)
	}
	pkitest.Write(t, f.dir, "self.key", kp)
	f.alice = f.ca.Issue("alice")
	f.eve = f.other.Issue("eve")
	f.mallory = f.ca.Issue("mallory")
	f.carol = pkitest.New(t, "probe root", pki.ECDSAP256).Issue("carol")
	f.alice.WritePair(t, f.dir, "alice")
	f.eve.WritePair(t, f.dir, "eve")
	f.mallory.WritePair(t, f.dir, "mallory")
	pkitest.Write(t, f.dir, "ca.crt", f.ca.PEM())
	pkitest.Write(t, f.dir, "ca.crl", f.ca.CRL(24*time.Hour, f.mallory.Cert))
	pkitest.Write(t, f.dir, "stale.crl", f.ca.CRL(-time.Minute))
	return f
}

// sServer starts `openssl s_server -www` with args on a free loopback port. When it does
// not start, the failure says what openssl said; when the test fails later, its log ends
// with openssl's output (each handshake's error is there).
func sServer(tb testing.TB, args ...string) string {
	tb.Helper()
	openssl := tooltest.Path(tb, "openssl")
	cmd := exec.Command(openssl, append([]string{"s_server", "-accept", "127.0.0.1:0", "-www"}, args...)...)
	accepted := make(chan string, 1)
	cmd.Stdout = &acceptLine{port: accepted}
	var p *proxytest.Process
	// Registered before StartProcess's Stop, so it runs after it: all the output is in.
	tb.Cleanup(func() {
		if p != nil && tb.Failed() {
			tb.Logf("openssl s_server %s; its output:\n%s", strings.Join(args, " "), p.Output())
		}
	})
	p = proxytest.StartProcess(tb, cmd)
	select {
	case port := <-accepted:
		return "127.0.0.1:" + port
	case <-p.Done():
		tb.Fatalf("s_server did not start: %s", p.Exited())
	case <-time.After(10 * time.Second): // never hang the suite
		tb.Fatalf("s_server printed no ACCEPT line in 10 s; its output so far:\n%s", p.Output())
	}
	return ""
}

var acceptRE = regexp.MustCompile(`^ACCEPT .*:(\d+)$`)

// acceptLine watches s_server's stdout for its "ACCEPT host:port" line and sends the
// port once; one goroutine (exec's copy of the stdout pipe) calls Write.
type acceptLine struct {
	port chan string // buffered; nil once sent
	buf  []byte      // the unfinished line
}

func (a *acceptLine) Write(b []byte) (int, error) {
	if a.port == nil {
		return len(b), nil
	}
	a.buf = append(a.buf, b...)
	for {
		i := bytes.IndexByte(a.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		if m := acceptRE.FindSubmatch(a.buf[:i]); m != nil {
			a.port <- string(m[1])
			a.port, a.buf = nil, nil
			return len(b), nil
		}
		a.buf = a.buf[i+1:]
	}
}

func (f *fixture) opts(t *testing.T, target string, client *pkitest.Leaf, crl bool) probe.Options {
	tg, err := probe.ParseTarget(target)
	if err != nil {
		t.Fatal(err)
	}
	o := probe.Options{Target: tg, Roots: f.ca.Pool(), ServerName: "localhost", Timeout: 5 * time.Second}
	if client != nil {
		o.ClientCert = new(client.TLS())
	}
	if crl {
		o.CRLs = [][]byte{f.ca.CRL(24*time.Hour, f.mallory.Cert)}
	}
	return o
}

// record runs a probe and returns its result and steps by kind.
func record(t *testing.T, o probe.Options) (probe.Result, map[string]probe.Step) {
	t.Helper()
	steps := map[string]probe.Step{}
	var order []string
	res := probe.Run(context.Background(), o, &probe.Trace{Step: func(s probe.Step) {
		steps[s.Kind] = s
		order = append(order, s.Kind)
	}})
	for i, k := range order {
		if steps[k].N == 0 || (i > 0 && steps[order[i]].N <= 0) {
			t.Fatalf("steps not numbered: %v", order)
		}
	}
	return res, steps
}

func failedCheck(s probe.Step, name string) bool {
	for _, c := range s.Checks {
		if strings.HasPrefix(c.Name, name) && c.Status == probe.Fail {
			return true
		}
	}
	return false
}

// TestAgainstOpenSSL probes openssl s_server set up in each failing way.
func TestAgainstOpenSSL(t *testing.T) {
	f := newFixture(t)
	mutual := []string{"-Verify", "1", "-verify_return_error", "-CAfile", f.path("ca.crt"), "-cert", f.path("server.crt"), "-cert_chain", f.path("server.crt"), "-key", f.path("server.key")}
	for _, tc := range []struct {
		name    string
		server  []string
		client  *pkitest.Leaf
		crl     bool
		tlsVer  uint16
		sni     string
		ok      bool
		verdict string
		reason  string
		check   [2]string // step kind and failed check name
		retry   string    // what the last retry step offered, when probe retried
	}{
		{name: "one-way ok", server: []string{"-cert", f.path("server.crt"), "-cert_chain", f.path("server.crt"), "-key", f.path("server.key")}, ok: true, verdict: "one-way"},
		{name: "expired server certificate", server: []string{"-cert", f.path("expired.crt"), "-cert_chain", f.path("expired.crt"), "-key", f.path("expired.key")}, verdict: "expired", check: [2]string{"server_chain", "validity period"}},
		{name: "self-signed server", server: []string{"-cert", f.path("self.crt"), "-key", f.path("self.key")}, verdict: "self-signed", check: [2]string{"server_chain", "trust"}},
		{name: "wrong hostname", server: []string{"-cert", f.path("server.crt"), "-cert_chain", f.path("server.crt"), "-key", f.path("server.key")}, sni: "www.example.org", verdict: "not valid for the name", check: [2]string{"server_chain", "name"}},
		{name: "missing intermediate", server: []string{"-cert", f.path("server-leaf.crt"), "-key", f.path("server.key")}, verdict: "does not send an intermediate", check: [2]string{"server_chain", "trust"}},
		{name: "mutual without a client certificate", server: mutual, verdict: "requires a client certificate", reason: "no_client_cert"},
		{name: "mutual, TLS 1.2, no client certificate", server: mutual, tlsVer: tls.VersionTLS12, verdict: "requires a client certificate (mutual authentication) and none was sent", reason: "no_client_cert"},
		{name: "server with only a legacy cipher suite", server: []string{"-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256", "-cert", f.path("server.crt"), "-key", f.path("server.key")}, verdict: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 (the suite is insecure)", retry: "legacy TLS 1.2 cipher suites"},
		{name: "server with only group P-521", server: []string{"-tls1_3", "-groups", "P-521", "-cert", f.path("server.crt"), "-key", f.path("server.key")}, verdict: "group P-521", retry: "every key-exchange group"},
		{name: "client certificate from another CA", server: mutual, client: f.eve, verdict: "not among the CAs the server accepts", reason: "unknown_ca", check: [2]string{"client_checks", "issuer among"}},
		{name: "client certificate from a CA regenerated under the same name", server: mutual, client: f.carol, verdict: "a CA with the name of one the server trusts but another key", reason: "unknown_ca", check: [2]string{"client_checks", "signed by the CA the server trusts"}},
		{name: "revoked client certificate", server: append([]string{"-crl_check", "-CRL", f.path("ca.crl")}, mutual...), client: f.mallory, crl: true, verdict: "revoked", reason: "revoked", check: [2]string{"client_checks", "revocation"}},
		{name: "CRL past its next update", server: append([]string{"-crl_check", "-CRL", f.path("stale.crl")}, mutual...), client: f.alice, crl: true, verdict: "the CRL of its issuer is past its next update", reason: "crl_unavailable", check: [2]string{"client_checks", "CRL of its issuer current"}},
		{name: "client key usage without digitalSignature", server: mutual, client: f.ca.Issue("kenc", func(r *pki.Request) { r.KeyUsage = x509.KeyUsageKeyEncipherment }), verdict: "its key usage does not allow signing", reason: "bad_usage", check: [2]string{"client_checks", "key usage"}},
		{name: "mutual ok", server: mutual, client: f.alice, ok: true, verdict: "mutual authentication"},
		{name: "TLS version mismatch", server: []string{"-tls1_3", "-cert", f.path("server.crt"), "-key", f.path("server.key")}, tlsVer: tls.VersionTLS12, verdict: "share no TLS version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := sServer(t, tc.server...)
			o := f.opts(t, "https://"+addr+"/", tc.client, tc.crl)
			if strings.HasSuffix(tc.name, "past its next update") {
				o.CRLs = [][]byte{f.ca.CRL(-time.Minute)} // the server's stale.crl
			}
			o.Version = tc.tlsVer
			if tc.sni != "" {
				o.ServerName = tc.sni
			}
			res, steps := record(t, o)
			if res.OK != tc.ok || !strings.Contains(res.Verdict, tc.verdict) || res.Reason != tc.reason {
				t.Fatalf("result %+v; want ok=%v, verdict with %q, reason %q", res, tc.ok, tc.verdict, tc.reason)
			}
			fixIsTable(t, res, steps["verdict"])
			if tc.check[0] != "" && !failedCheck(steps[tc.check[0]], tc.check[1]) {
				t.Fatalf("step %s has no failed check %q: %+v", tc.check[0], tc.check[1], steps[tc.check[0]])
			}
			if got, ok := steps["retry"]; ok != (tc.retry != "") || !strings.Contains(got.Title, tc.retry) {
				t.Fatalf("retry step %+v, want one offering %q", got, tc.retry)
			}
		})
	}
}

// fixIsTable: a verdict naming a reason code gives that reason's fix from the one
// table the console and the refusal page use (clientauth's), in --json and in text.
func fixIsTable(t *testing.T, res probe.Result, verdict probe.Step) {
	t.Helper()
	if res.Reason == "" {
		return
	}
	want := clientauth.Reason(res.Reason).Fix()
	if res.Diagnosis.Fix != want || !slices.Contains(verdict.Lines, "fix: "+want) {
		t.Fatalf("reason %s: fix %q, verdict lines %q; want the reason table's %q", res.Reason, res.Diagnosis.Fix, verdict.Lines, want)
	}
}

// TestPlainTCPOnTLSPort: a server that answers in plain text is named as such.
func TestPlainTCPOnTLSPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
		_, _ = io.Copy(io.Discard, c)
	}()
	f := newFixture(t)
	res, _ := record(t, f.opts(t, ln.Addr().String(), nil, false))
	if res.OK || !strings.Contains(res.Verdict, "did not answer with TLS") {
		t.Fatalf("result %+v", res)
	}
}

func TestConnectionRefused(t *testing.T) {
	addr := porttest.Dead(t)
	f := newFixture(t)
	res, steps := record(t, f.opts(t, addr, nil, false))
	if res.OK || steps["connect"].Status != probe.Fail || !strings.Contains(res.Verdict, "nothing listens") {
		t.Fatalf("result %+v", res)
	}
}

// TestAgainstTlsgate probes the demo's listeners: the same reason codes as the server.
func TestAgainstTlsgate(t *testing.T) {
	dir := t.TempDir()
	d, err := demo.Start(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	ca, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	crl, err := os.ReadFile(filepath.Join(dir, "ca.crl"))
	if err != nil {
		t.Fatal(err)
	}
	client := func(name string) *tls.Certificate {
		c, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"))
		if err != nil {
			t.Fatal(err)
		}
		return &c
	}
	for _, tc := range []struct {
		name, listener string
		https          bool
		client         *tls.Certificate
		version        uint16
		ok             bool
		verdict        string
		reason         string
	}{
		{"one-way", "https-one-way", true, nil, 0, true, "one-way", ""},
		{"mutual, no certificate, TLS 1.3", "https-mutual", true, nil, tls.VersionTLS13, false, "requires a client certificate", "no_client_cert"},
		{"mutual, revoked, TLS 1.2", "https-mutual", true, client("mallory"), tls.VersionTLS12, false, "revoked", "revoked"},
		{"mutual, revoked, TLS 1.3", "https-mutual", true, client("mallory"), tls.VersionTLS13, false, "revoked", "revoked"},
		{"mutual, no certificate, TLS 1.2", "https-mutual", true, nil, tls.VersionTLS12, false, "requires a client certificate (mutual authentication) and none was sent", "no_client_cert"},
		{"refusal: http, alice", "https-explain", true, client("alice"), 0, true, "mutual authentication", ""},
		{"refusal: http, revoked", "https-explain", true, client("mallory"), 0, false, "refused the client certificate: it is revoked", "revoked"},
		{"refusal: http, no certificate", "https-explain", true, nil, 0, false, "refused the client certificate: mutual authentication is required and the client sent no certificate", "no_client_cert"},
		{"refusal: http, eve", "https-explain", true, client("eve"), 0, false, "refused the client certificate: its issuer is not among the CAs the server accepts", "unknown_ca"},
		{"TCP SSL, alice", "tcpssl-mutual", false, client("alice"), 0, true, "mutual authentication", ""},
		{"TCP SSL, eve", "tcpssl-mutual", false, client("eve"), tls.VersionTLS13, false, "not among the CAs", "unknown_ca"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := d.Server.Addr(tc.listener).String()
			if tc.https {
				target = "https://" + target + "/"
			}
			tg, err := probe.ParseTarget(target)
			if err != nil {
				t.Fatal(err)
			}
			o := probe.Options{Target: tg, Roots: roots, ServerName: "localhost", ClientCert: tc.client, Version: tc.version, CRLs: [][]byte{crl}, Timeout: 5 * time.Second}
			res, steps := record(t, o)
			if res.OK != tc.ok || !strings.Contains(res.Verdict, tc.verdict) || res.Reason != tc.reason {
				t.Fatalf("result %+v; want ok=%v, %q, reason %q", res, tc.ok, tc.verdict, tc.reason)
			}
			// The reason code is in the text too, not only in --json's result (SPEC §1).
			if lines := strings.Join(steps["verdict"].Lines, "\n"); tc.reason != "" && !strings.Contains(lines, "reason code: "+tc.reason+" ") {
				t.Fatalf("verdict step %q lacks reason code %s", lines, tc.reason)
			}
			fixIsTable(t, res, steps["verdict"])
		})
	}
}

// TestAgainstNginx: nginx with ssl_verify_client on lets every handshake complete and
// refuses in HTTP (400 pages); probe reads the page instead of reporting success.
func TestAgainstNginx(t *testing.T) {
	nginx := tooltest.Path(t, "nginx")
	f := newFixture(t)
	addr := porttest.Hold(t)
	conf := fmt.Sprintf(`daemon off;
master_process off;
error_log stderr warn;
pid %[1]s/nginx.pid;
events {}
http {
  access_log off;
  client_body_temp_path %[1]s; proxy_temp_path %[1]s; fastcgi_temp_path %[1]s; uwsgi_temp_path %[1]s; scgi_temp_path %[1]s;
  server {
    listen %[2]s ssl;
    ssl_certificate %[1]s/server.crt;
    ssl_certificate_key %[1]s/server.key;
    ssl_client_certificate %[1]s/ca.crt;
    ssl_verify_client on;
    location / { return 200 "ok\n"; }
  }
}
`, f.dir, addr)
	startNginx(t, nginx, f.dir, conf, addr)
	for _, tc := range []struct {
		name    string
		client  *pkitest.Leaf
		ok      bool
		verdict string
		reason  string
	}{
		{"no certificate", nil, false, "refused the client certificate: mutual authentication is required and the client sent no certificate", "no_client_cert"},
		{"certificate from another CA", f.eve, false, "not among the CAs the server accepts", "unknown_ca"},
		{"alice", f.alice, true, "mutual authentication", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, steps := record(t, f.opts(t, "https://"+addr+"/", tc.client, false))
			if res.OK != tc.ok || !strings.Contains(res.Verdict, tc.verdict) || res.Reason != tc.reason {
				t.Fatalf("result %+v; want ok=%v, verdict with %q, reason %q", res, tc.ok, tc.verdict, tc.reason)
			}
			if !tc.ok && !strings.Contains(res.Diagnosis.Cause, "nginx (ssl_verify_client) refused the client certificate in HTTP (status 400)") {
				t.Fatalf("cause %q does not name nginx's HTTP refusal; steps %+v", res.Diagnosis.Cause, steps["server_verdict"])
			}
		})
	}
}

// TestSHA1ClientCertificate: a client certificate signed with SHA-1 by a CA the server
// trusts is refused by a Go server (tlsgate's) as unknown_ca; probe names the SHA-1
// signature (user-asks 2.5 item 4) instead of a CA regenerated under the same name,
// which the issuer's name alone suggested.
func TestSHA1ClientCertificate(t *testing.T) {
	f := newFixture(t)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "old"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, SignatureAlgorithm: x509.ECDSAWithSHA1}
	key := pkitest.Key(t, pki.ECDSAP256)
	der, err := x509.CreateCertificate(rand.Reader, tpl, f.ca.Cert, key.Public(), f.ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{f.server.TLS()}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: f.ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	o := f.opts(t, ln.Addr().String(), nil, false)
	o.ClientCert = &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	res, steps := record(t, o)
	if res.OK || res.Reason != "unknown_ca" || !strings.Contains(res.Verdict, "it is signed with ECDSA-SHA1") ||
		!failedCheck(steps["client_checks"], "signature algorithm") || failedCheck(steps["client_checks"], "signed by the CA the server trusts") {
		t.Fatalf("result %+v; client checks %+v", res, steps["client_checks"])
	}
}

// TestMisdirected: a 421 answer is explained (SNI and Host must lead to the same TLS
// policy; without SNI, --servername), user-asks 2.5 item 7.
func TestMisdirected(t *testing.T) {
	f := newFixture(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{f.server.TLS()}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusMisdirectedRequest)
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	for _, tc := range []struct{ sni, want string }{
		{"localhost", `the server does not answer Host "localhost" on a connection opened with SNI "localhost"`},
		{"", "no SNI was sent (the target is an IP address)"},
	} {
		o := f.opts(t, "https://"+ln.Addr().String()+"/", nil, false)
		o.ServerName = tc.sni // "": the target's IP, which the server certificate lists
		_, steps := record(t, o)
		if got := steps["http"]; got.Status != probe.Warn || !strings.Contains(strings.Join(got.Lines, "\n"), tc.want) {
			t.Errorf("SNI %q: http step %+v; want a line with %q", tc.sni, got, tc.want)
		}
	}
}
