// Package etcdtest starts a real etcd server process on loopback for tests (Debian's
// etcd-server): held ports (porttest.Hold: no other socket is given them while the test
// runs, from before etcd binds them to after its last stop), a temporary data directory,
// a log file per start (etcd-1.log, etcd-2.log after a Restart), stopped at cleanup. A
// process that exits before it accepts clients fails the test at once, with its exit
// status and the end of its output. Tests skip when etcd is not installed, but fail when CI=true.
// Imported only from _test.go files.
package etcdtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

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
}

// Binary returns the etcd binary, skipping the test when there is none (failing under CI).
func Binary(tb testing.TB) string {
	tb.Helper()
	return tooltest.Path(tb, "etcd") // Debian's etcd-server
}

// Start runs etcd and waits until it accepts clients.
func Start(tb testing.TB) *Server {
	tb.Helper()
	Binary(tb)
	s := &Server{tb: tb, dir: tb.TempDir(), Endpoint: porttest.Hold(tb), peer: porttest.Hold(tb)}
	s.Restart()
	tb.Cleanup(s.Stop)
	return s
}

// StartTLS runs etcd serving clients over TLS with the certificate and key files given,
// requiring client certificates issued by the CA bundle in caFile.
func StartTLS(tb testing.TB, caFile, certFile, keyFile string) *Server {
	tb.Helper()
	Binary(tb)
	s := &Server{tb: tb, dir: tb.TempDir(), Endpoint: porttest.Hold(tb), peer: porttest.Hold(tb),
		tls: []string{"--cert-file", certFile, "--key-file", keyFile, "--trusted-ca-file", caFile, "--client-cert-auth"}}
	s.Restart()
	tb.Cleanup(s.Stop)
	return s
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
	s.proc.WaitAccepting(s.tb, s.Endpoint)
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
