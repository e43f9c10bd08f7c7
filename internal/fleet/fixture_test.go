package fleet_test

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"tlsgate/internal/etcdtest"
	"tlsgate/internal/fleet"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
)

// pkiDir is a fleet config directory: a server certificate "site" and a client CA
// bundle "clients" from one test CA, a second CA "other" for policy separation.
type pkiDir struct {
	dir    string
	ca     *pkitest.CA
	other  *pkitest.CA
	client *pkitest.Leaf
	keyPEM []byte // the server's private key, to look for in etcd
}

func newPKI(t testing.TB) *pkiDir {
	t.Helper()
	d := &pkiDir{dir: t.TempDir(), ca: pkitest.New(t, "fleet-ca", pki.ECDSAP256), other: pkitest.New(t, "other-ca", pki.ECDSAP256)}
	site := d.ca.Issue("site", pkitest.Server("localhost", "127.0.0.1", "127.0.0.2", "127.0.0.3"))
	_, keyPath := site.WritePair(t, d.dir, "server")
	d.keyPEM, _ = os.ReadFile(keyPath)
	pkitest.Write(t, d.dir, "ca.crt", d.ca.PEM())
	pkitest.Write(t, d.dir, "other.crt", d.other.PEM())
	d.client = d.ca.Issue("client-a")
	return d
}

// write writes the fleet config and returns its path.
func (d *pkiDir) write(t testing.TB, name, yaml string) string {
	t.Helper()
	return pkitest.Write(t, d.dir, name, []byte(yaml))
}

// testKeys writes a random fleet key file and returns its path and Keys.
func testKeys(t testing.TB) (string, *fleet.Keys) {
	t.Helper()
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	p := filepath.Join(t.TempDir(), "fleet.key")
	if err := os.WriteFile(p, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := fleet.LoadKeys(p)
	if err != nil {
		t.Fatal(err)
	}
	return p, k
}

// newStore starts etcd and returns a store on it.
func newStore(t testing.TB, keys *fleet.Keys) (*fleet.Store, *etcdtest.Server) {
	t.Helper()
	e := etcdtest.Start(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint}, DialTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return &fleet.Store{Client: cli, Prefix: "/tlsgate/test", Keys: keys}, e
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
