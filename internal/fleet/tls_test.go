package fleet_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"tlsgate/internal/config"
	"tlsgate/internal/etcdtest"
	"tlsgate/internal/fleet"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
)

// TestFleetEtcdTLS: a node config's fleet.ca, cert and key reach an etcd that serves
// over TLS and requires client certificates; without the client certificate it fails.
func TestFleetEtcdTLS(t *testing.T) {
	dir := t.TempDir()
	ca := pkitest.New(t, "etcd-ca", pki.ECDSAP256)
	caFile := pkitest.Write(t, dir, "etcd-ca.pem", ca.PEM())
	srvCert, srvKey := ca.Issue("etcd", pkitest.Server("127.0.0.1")).WritePair(t, dir, "etcd-server")
	cliCert, cliKey := ca.Issue("tlsgate").WritePair(t, dir, "etcd-client")
	e := etcdtest.StartTLS(t, etcdtest.TLS{CA: caFile, Cert: srvCert, Key: srvKey, ClientCert: cliCert, ClientKey: cliKey})

	d := newPKI(t)
	keyFile, keys := testKeys(t)
	node := func(cache, tls string) *config.Config {
		t.Helper()
		p := filepath.Join(dir, "node.yaml")
		yaml := fmt.Sprintf("fleet: {etcd: [%s], prefix: /tlsgate/tls, instance: n, key_file: %s, cache_dir: %s%s}\n", e.Endpoint, keyFile, cache, tls)
		if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		nc, err := config.Load(p)
		if err != nil {
			t.Fatal(err)
		}
		return nc
	}
	nc := node("cache", fmt.Sprintf(", ca: %s, cert: %s, key: %s", caFile, cliCert, cliKey))
	cli, err := fleet.Dial(nc.Fleet, nc.Resolve, nc.ReadSecret)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	s := &fleet.Store{Client: cli, Prefix: "/tlsgate/tls", Keys: keys}
	r, err := fleet.Bundle(d.write(t, "fleet.yaml", siteConfig))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Push(ctxT(t), r, 0); err != nil {
		t.Fatalf("push over TLS: %v", err)
	}
	n, err := fleet.NewNode(nc, fleet.NodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if cfg, err := n.Initial(t.Context()); err != nil || cfg.Revision != 1 {
		t.Fatalf("node over TLS: %v", err)
	}
	// Without a client certificate etcd refuses (and no cache exists to fall back on).
	defer func(d time.Duration) { fleet.StartupTimeout = d }(fleet.StartupTimeout)
	fleet.StartupTimeout = 2 * time.Second
	bare, err := fleet.NewNode(node("other", fmt.Sprintf(", ca: %s", caFile)), fleet.NodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	if _, err := bare.Initial(t.Context()); err == nil {
		t.Fatal("a node without a client certificate loaded the revision")
	}
}

// TestFleetEtcdAuth: fleet.username and password_file log in to an etcd with
// authentication on; a wrong password is refused.
func TestFleetEtcdAuth(t *testing.T) {
	e := etcdtest.Start(t)
	root, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint}, DialTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	for _, step := range []func() error{
		func() error { _, err := root.UserAdd(ctx, "root", "root-secret"); return err },
		func() error { _, err := root.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := root.UserAdd(ctx, "tlsgate", "fleet-secret"); return err },
		func() error { _, err := root.RoleAdd(ctx, "fleet"); return err },
		func() error {
			_, err := root.RoleGrantPermission(ctx, "fleet", "/tlsgate/auth", clientv3.GetPrefixRangeEnd("/tlsgate/auth"), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := root.UserGrantRole(ctx, "tlsgate", "fleet"); return err },
		func() error { _, err := root.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	root.Close()
	dir := t.TempDir()
	_, keys := testKeys(t)
	dial := func(password string) error {
		pw := pkitest.Write(t, dir, "etcd.password", []byte(password+"\n"))
		f := &config.Fleet{Etcd: []string{e.Endpoint}, Username: "tlsgate", PasswordFile: pw}
		cli, err := fleet.Dial(f, func(p string) string { return p }, (&config.Config{}).ReadSecret)
		if err != nil {
			return err
		}
		defer cli.Close()
		_, err = (&fleet.Store{Client: cli, Prefix: "/tlsgate/auth", Keys: keys}).Head(ctx)
		return err
	}
	if err := dial("fleet-secret"); err != nil {
		t.Fatalf("with the password: %v", err)
	}
	if err := dial("wrong"); err == nil {
		t.Fatal("a wrong password was let in")
	}
}
