package etcdtest

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
	"tlsgate/internal/porttest"
	"tlsgate/internal/proxytest"
)

// TestStartFailsWithEtcdOutput: an etcd that cannot start (its peer port is taken)
// fails the test at once, with etcd's own complaint and its exit status, not after the
// readiness wait's 10 s with a bare "nothing accepts".
func TestStartFailsWithEtcdOutput(t *testing.T) {
	t.Parallel()
	Binary(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	start := time.Now()
	msg := proxytest.CatchFatal(t, func(tb testing.TB) {
		s := &Server{tb: tb, dir: t.TempDir(), Endpoint: porttest.Hold(tb), peer: taken.Addr().String()}
		s.Restart()
	})
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Start failed after %v; want at once", took)
	}
	for _, want := range []string{"etcd exited (exit status 1)", taken.Addr().String() + ": bind: address already in use"} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure %q lacks %q", msg, want)
		}
	}
}

// TestRestartKeepsEachLog: each start writes its own log file; a Restart does not
// overwrite the log of the run before the outage.
func TestRestartKeepsEachLog(t *testing.T) {
	t.Parallel()
	s := Start(t)
	s.Stop()
	s.Restart()
	logs, err := filepath.Glob(filepath.Join(s.dir, "etcd-*.log"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(s.dir, "etcd-1.log"), filepath.Join(s.dir, "etcd-2.log")}; strings.Join(logs, " ") != strings.Join(want, " ") {
		t.Fatalf("logs %v after a restart; want %v", logs, want)
	}
}

// tlsFiles writes, under dir, a CA, a certificate and key for etcd on 127.0.0.1 and a
// client pair, all of that CA, which it returns too.
func tlsFiles(t *testing.T, dir string) (TLS, *pkitest.CA) {
	ca := pkitest.New(t, "etcd-ca", pki.ECDSAP256)
	f := TLS{CA: pkitest.Write(t, dir, "ca.pem", ca.PEM())}
	f.Cert, f.Key = ca.Issue("etcd", pkitest.Server("127.0.0.1")).WritePair(t, dir, "etcd")
	f.ClientCert, f.ClientKey = ca.Issue("client").WritePair(t, dir, "client")
	return f, ca
}

// TestStartTLSFailsOnABadKey: an etcd given a key that is not its certificate's, or a
// key file cut in half, binds its client port and then exits; its start fails with etcd's
// complaint, where a readiness wait that only connects returned as if it had started.
func TestStartTLSFailsOnABadKey(t *testing.T) {
	t.Parallel()
	Binary(t)
	dir := t.TempDir()
	f, _ := tlsFiles(t, dir)
	key, err := os.ReadFile(f.Key)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, key, want string }{
		{"another certificate's key", f.ClientKey, "tls: private key does not match public key"},
		{"key cut in half", pkitest.Write(t, dir, "half.key", key[:len(key)/2]), "tls: failed to find any PEM data in key input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bad := f
			bad.Key = tc.key
			msg := proxytest.CatchFatal(t, func(tb testing.TB) { StartTLS(tb, bad) })
			for _, want := range []string{"etcd is not healthy at https://", "etcd exited (exit status 1)", tc.want} {
				if !strings.Contains(msg, want) {
					t.Errorf("failure %q lacks %q", msg, want)
				}
			}
		})
	}
}

// TestStartTLSHealthy: StartTLS returns an etcd that answers a client presenting the
// client certificate, and refuses one without it (the health check is not let in by a
// server that asks for no certificate).
func TestStartTLSHealthy(t *testing.T) {
	t.Parallel()
	Binary(t)
	f, ca := tlsFiles(t, t.TempDir())
	s := StartTLS(t, f)
	url := "https://" + s.Endpoint + "/health"
	if err := s.healthy(url)(); err != nil {
		t.Fatalf("after StartTLS: %v", err)
	}
	bare := &Server{client: &tls.Config{RootCAs: ca.Pool()}}
	if err := bare.healthy(url)(); err == nil {
		t.Fatal("a health check without the client certificate passed")
	}
}
