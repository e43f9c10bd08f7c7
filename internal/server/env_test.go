package server_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"tlsgate/internal/demo"
	"tlsgate/internal/metrics"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
	"tlsgate/internal/proxytest"
	"tlsgate/internal/server"
)

// env is a running tlsgate with a test PKI: root CA "ca" (with intermediate "inter")
// issuing the server certificate and client certificates, a foreign CA "other", a CRL
// per CA, and listeners one_way, mutual, optional (https), tcpssl (tcp_ssl, mutual) and
// plain (http).
type env struct {
	t        testing.TB
	dir      string
	cfgPath  string
	ca       *pkitest.CA
	inter    *pkitest.CA
	other    *pkitest.CA
	revoked  *pkitest.Leaf
	srv      *server.Server
	sink     *proxytest.Sink
	metrics  *metrics.Metrics
	backend  *demo.Backend
	reloaded chan error
	// stopWatching stops the server's file watching (and so its reloads); idempotent.
	stopWatching func()
	// groups is extra target_groups YAML an extra may set; top is extra top-level YAML.
	groups, top string
	// dial, when an extra sets it, is the server's dial function to targets.
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

const envConfig = `watch_interval: %[3]s
%[7]s
certificates:
  - {id: site, cert: server.crt, key: server.key}
  - {id: clients, ca: ca.crt, crl: [ca.crl, inter.crl]}
%[4]s
target_groups:
  - {id: web, targets: [{address: %[1]s}]}
  - {id: echo, targets: [{address: %[2]s}]}
%[6]s
listeners:
  - {id: one_way, protocol: https, listen: 127.0.0.1:0, target_group: web,
     ssl: {mode: one_way, server_certificates: [site]}}
  - {id: mutual, protocol: https, listen: 127.0.0.1:0, target_group: web,
     ssl: {mode: mutual, server_certificates: [site], ca_certificate: clients}}
  - {id: optional, protocol: https, listen: 127.0.0.1:0, target_group: web,
     ssl: {mode: optional, server_certificates: [site], ca_certificate: clients}}
  - {id: tcpssl, protocol: tcp_ssl, listen: 127.0.0.1:0, target_group: echo,
     ssl: {mode: mutual, server_certificates: [site], ca_certificate: clients}}
  - {id: plain, protocol: http, listen: 127.0.0.1:0, target_group: web}
%[5]s
`

// h2Idle is what an HTTP/2 client that then stays idle sends: the connection preface
// and an empty SETTINGS frame.
const h2Idle = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"

// extra adds YAML to the env's config: certificate entries and listener entries (each
// line indented as in envConfig). It runs after the PKI exists, so it may write files.
type extra func(e *env) (certificates, listeners string)

func newEnv(t testing.TB, kt pki.KeyType, extras ...extra) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), sink: proxytest.NewSink(), metrics: metrics.New(), reloaded: make(chan error, 16)}
	e.ca = pkitest.New(t, "test root", kt)
	e.inter = e.ca.Intermediate("test intermediate")
	e.other = pkitest.New(t, "other root", kt)
	e.revoked = e.ca.Issue("revoked")
	srvLeaf := e.ca.Issue("localhost", pkitest.Server("localhost", "127.0.0.1"))
	srvLeaf.WritePair(t, e.dir, "server")
	pkitest.Write(t, e.dir, "ca.crt", e.ca.PEM())
	pkitest.Write(t, e.dir, "ca.crl", e.ca.CRL(24*time.Hour, e.revoked.Cert))
	pkitest.Write(t, e.dir, "inter.crl", e.inter.CRL(24*time.Hour))
	e.backend = proxytest.Backend(t)
	var moreCerts, moreListeners string
	for _, x := range extras {
		c, l := x(e)
		moreCerts, moreListeners = moreCerts+c, moreListeners+l
	}
	e.cfgPath = pkitest.Write(t, e.dir, "tlsgate.yaml", fmt.Appendf(nil, envConfig, e.backend.HTTP.Addr(), e.backend.TCP.Addr(), "10ms", moreCerts, moreListeners, e.groups, e.top))
	log := e.sink.Logger()
	if _, bench := t.(*testing.B); bench {
		// Benchmarks pay for real JSON log lines, not for the test sink's parsing.
		log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	e.srv = server.New(server.Options{
		ConfigPath: e.cfgPath, Log: log, Metrics: e.metrics,
		OnReload: func(err error) { e.reloaded <- err }, Dial: e.dial,
	})
	if err := e.srv.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.srv.Watch(ctx); close(done) }()
	e.stopWatching = sync.OnceFunc(func() { cancel(); <-done })
	srv := e.srv
	t.Cleanup(func() {
		e.stopWatching()
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return e
}

func (e *env) addr(id string) string {
	e.t.Helper()
	a := e.srv.Addr(id)
	if a == nil {
		e.t.Fatalf("no listener %q", id)
	}
	return a.String()
}

// tlsConfig is a client config trusting the test root, with at most version.
func (e *env) tlsConfig(version uint16, cert *tls.Certificate) *tls.Config {
	c := &tls.Config{RootCAs: e.ca.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS12, MaxVersion: version}
	if cert != nil {
		// Send the certificate whatever the server's acceptable CAs are: Go's client
		// would otherwise stay silent for a foreign CA, where curl and browsers send.
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return c
}

// echo is what the HTTP echo backend saw.
type echo struct {
	Status  int
	Proto   string            `json:"proto"`
	Headers map[string]string `json:"headers"`
}

// get makes one request on a new connection to an https (or, with version 0, http)
// listener.
func (e *env) get(id string, version uint16, cert *tls.Certificate, hdr http.Header, h2 bool) (*echo, error) {
	e.t.Helper()
	var cfg *tls.Config
	if version != 0 {
		cfg = e.tlsConfig(version, cert)
	}
	resp, body, err := e.request(id, cfg, hdr, h2)
	if err != nil {
		return nil, err
	}
	return decodeEcho(e.t, resp.StatusCode, body), nil
}

// request makes one GET of /x on a new connection to listener id, over TLS with cfg (plain
// HTTP when cfg is nil), and returns the response with its body read.
func (e *env) request(id string, cfg *tls.Config, hdr http.Header, h2 bool) (*http.Response, []byte, error) {
	e.t.Helper()
	tr := &http.Transport{DisableKeepAlives: true, ForceAttemptHTTP2: h2, TLSClientConfig: cfg}
	scheme := "http"
	if cfg != nil {
		scheme = "https"
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, scheme+"://"+e.addr(id)+"/x", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	maps.Copy(req.Header, hdr)
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	return resp, body, nil
}

// decodeEcho reads what the echo backend saw from a response; only the status when it
// is not 200.
func decodeEcho(tb testing.TB, status int, body []byte) *echo {
	tb.Helper()
	out := &echo{Status: status}
	if status == http.StatusOK {
		if err := json.Unmarshal(body, out); err != nil {
			tb.Fatalf("backend answer %q: %v", body, err)
		}
	}
	return out
}

// writeFile replaces a file of the env atomically (write + rename), as operators and
// Kubernetes do.
func (e *env) writeFile(name string, data []byte) {
	e.t.Helper()
	tmp := filepath.Join(e.dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(e.dir, name)); err != nil {
		e.t.Fatal(err)
	}
}

// waitReload waits for the next reload attempt and returns its error.
func (e *env) waitReload() error {
	e.t.Helper()
	select {
	case err := <-e.reloaded:
		return err
	case <-time.After(10 * time.Second):
		e.t.Fatal("no reload happened")
		return nil
	}
}
