// Package etcdtest starts a real etcd server process on loopback for tests (Debian's
// etcd-server): held ports (porttest.Hold: no other socket is given them while the test
// runs, from before etcd binds them to after its last stop), a temporary data directory,
// a log file per start (etcd-1.log, etcd-2.log after a Restart), stopped at cleanup. A
// start returns once etcd answers GET /health with {"health":"true"} (etcd binds its
// client port before it has read its TLS files, and exits after when they are bad: a
// connect proves nothing). A process that exits before it is healthy fails the test at
// once, with its exit status and the end of its output. Tests skip when etcd is not
// installed, but fail when CI=true.
// Imported only from _test.go files.
package etcdtest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"tlsgate/internal/porttest"
	"tlsgate/internal/proxytest"
	"tlsgate/internal/tooltest"
)

// Server is one etcd process that can be stopped and started again on the same ports
// and data (an outage and its recovery).
type Server struct {
	// Endpoint is the client address, host:port.
	Endpoint string
	tb       testing.TB
	dir      string
	peer     string
	mu       sync.Mutex
	proc     *proxytest.Process // nil while stopped
	starts   int                // the log of the nth start is etcd-n.log
	tls      []string           // the TLS flags of StartTLS
	client   *tls.Config        // StartTLS's client side, for the health check
}

// TLS names the files of an etcd serving clients over TLS: its certificate and key, the
// CA bundle it verifies client certificates against, and a client certificate and key
// that bundle accepts (etcdtest's own health check presents them).
type TLS struct {
	CA, Cert, Key         string
	ClientCert, ClientKey string
}

// Binary returns the etcd binary, skipping the test when there is none (failing under CI).
func Binary(tb testing.TB) string {
	tb.Helper()
	return tooltest.Path(tb, "etcd") // Debian's etcd-server
}

// Start runs etcd and waits until it answers its health check.
func Start(tb testing.TB) *Server {
	tb.Helper()
	Binary(tb)
	s := &Server{tb: tb, dir: tb.TempDir(), Endpoint: porttest.Hold(tb), peer: porttest.Hold(tb)}
	s.Restart()
	tb.Cleanup(s.Stop)
	return s
}

// StartTLS runs etcd serving clients over TLS with f's certificate and key, requiring
// client certificates issued by f.CA, and waits until it answers its health check (made
// with f's client certificate).
func StartTLS(tb testing.TB, f TLS) *Server {
	tb.Helper()
	Binary(tb)
	s := &Server{tb: tb, dir: tb.TempDir(), Endpoint: porttest.Hold(tb), peer: porttest.Hold(tb),
		tls:    []string{"--cert-file", f.Cert, "--key-file", f.Key, "--trusted-ca-file", f.CA, "--client-cert-auth"},
		client: clientTLS(tb, f)}
	s.Restart()
	tb.Cleanup(s.Stop)
	return s
}

func clientTLS(tb testing.TB, f TLS) *tls.Config {
	tb.Helper()
	pair, err := tls.LoadX509KeyPair(f.ClientCert, f.ClientKey)
	if err != nil {
		tb.Fatalf("etcd's client certificate: %v", err)
	}
	ca, err := os.ReadFile(f.CA)
	if err != nil {
		tb.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca) {
		tb.Fatalf("no certificate in %s", f.CA)
	}
	return &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}}
}

// Restart starts the process again after Stop (same ports, same data).
func (s *Server) Restart() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return
	}
	scheme := "http://"
	if s.tls != nil {
		scheme = "https://"
	}
	client, peer := scheme+s.Endpoint, "http://"+s.peer
	args := append([]string{
		"--name", "t", "--data-dir", filepath.Join(s.dir, "data"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "t=" + peer, "--log-level", "error", "--logger", "zap"}, s.tls...)
	cmd := exec.Command(Binary(s.tb), args...)
	s.starts++
	log, err := os.Create(filepath.Join(s.dir, fmt.Sprintf("etcd-%d.log", s.starts)))
	if err != nil {
		s.tb.Fatal(err)
	}
	s.tb.Cleanup(func() { _ = log.Close() })
	cmd.Stdout, cmd.Stderr = log, log
	s.proc = proxytest.StartProcess(s.tb, cmd)
	s.proc.WaitReady(s.tb, "etcd is not healthy at "+client, s.healthy(client+"/health"))
}

// healthy returns the readiness check: GET url answers 200 with {"health":"true"} (a
// single member is healthy once it has elected itself leader).
func (s *Server) healthy(url string) func() error {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: s.client, DisableKeepAlives: true}}
	return func() error {
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		if err != nil {
			return err
		}
		var h struct{ Health string }
		if err := json.Unmarshal(body, &h); err != nil || resp.StatusCode != http.StatusOK || h.Health != "true" {
			return fmt.Errorf("%s: %s", resp.Status, body)
		}
		return nil
	}
}

// Stop kills the process (an outage: no graceful leave) and waits for it to exit.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	s.proc.Stop()
	s.proc = nil
}
