package fleet_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tlsgate/internal/config"
	"tlsgate/internal/fleet"
	"tlsgate/internal/server"
)

// TestFleetEtcdDown: etcd killed → every node serves; a node restarted meanwhile serves
// from its cache (sealed, 0600); etcd back → every node catches up with a new push.
func TestFleetEtcdDown(t *testing.T) {
	f, push := newFleet(t, "a", "b")
	a, b := f.nodes[0], f.nodes[1]
	f.waitApplied(1, a, b)
	e := f.etcd
	leaf := f.d.client.TLS()
	serves := func(n *testNode) {
		t.Helper()
		if code, _, err := newClient(f.d, tls.VersionTLS13, &leaf).get(n.addr(t, "mutual")); err != nil || code != http.StatusOK {
			t.Fatalf("node %s: %d %v", n.name, code, err)
		}
	}
	cache := filepath.Join(b.dir, "cache", "revision.json")
	fi, err := os.Stat(cache)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cache %s: %v %v", cache, fi, err)
	}
	data, _ := os.ReadFile(cache)
	if strings.Contains(string(data), "PRIVATE KEY") || strings.Contains(string(data), "certificates:") {
		t.Fatal("the cache holds the revision in clear")
	}

	e.Stop()
	for _, n := range f.nodes {
		eventually(t, "node "+n.name+" notices etcd is gone", func() bool { return metricValue(t, n, "tlsgate_fleet_connected") == 0 })
		serves(n)
	}
	a.sink.Next(t, map[string]any{"msg": "fleet: lost etcd; serving the last applied revision and retrying"})
	// Without etcd nobody rotates the fleet's ticket keys: the ring rotates on its own.
	fleetMaster := masterIDs(a)[0]
	a.srv.TicketKeys().SetRotation(time.Nanosecond)
	eventually(t, "node a rotates its ticket keys itself", func() bool {
		a.srv.TicketKeys().Rotate()
		return masterIDs(a)[0] != fleetMaster
	})

	b.stop()
	b = startNode(t, e.Endpoint, f.keyFile, "b", b.bind, b.dir)
	f.nodes[1] = b
	serves(b)
	if b.node.Applied() != 1 {
		t.Fatalf("restarted node serves %d, want the cached 1", b.node.Applied())
	}

	e.Restart()
	rev := push(`  - {id: after, protocol: https, listen: 127.0.0.1:0, target_group: web,
     ssl: {mode: one_way, server_certificates: [site]}}
`)
	f.waitApplied(rev, a, b)
	for _, n := range f.nodes {
		serves(n)
		if code, _, err := newClient(f.d, tls.VersionTLS12, nil).get(n.addr(t, "after")); err != nil || code != http.StatusOK {
			t.Fatalf("node %s after etcd came back: %d %v", n.name, code, err)
		}
	}
	a.sink.Next(t, map[string]any{"msg": "fleet: connected to etcd"})
}

// TestFleetAdminDenylist: a denylist entry made through node a's admin API reaches node
// b: a new handshake there is refused (TLS 1.2 and 1.3), and so are a session resumed
// with a ticket node a issued and an open connection of the client.
func TestFleetAdminDenylist(t *testing.T) {
	f, _ := newFleet(t, "a", "b")
	a, b := f.nodes[0], f.nodes[1]
	f.waitApplied(1, a, b)
	waitTickets(t, f)
	leaf := f.d.client.TLS()
	// Two sessions from node a: one proves a's tickets resume on b, the other is tried
	// after the denial.
	proof, resumer := newClient(f.d, tls.VersionTLS13, &leaf), newClient(f.d, tls.VersionTLS13, &leaf)
	for _, c := range []*client{proof, resumer} {
		if code, _, err := c.get(a.addr(t, "mutual")); err != nil || code != http.StatusOK {
			t.Fatalf("on a: %d %v", code, err)
		}
	}
	if _, resumed, err := proof.get(b.addr(t, "mutual")); err != nil || !resumed {
		t.Fatalf("a's ticket does not resume on b before the denial: resumed=%v %v", resumed, err)
	}
	open, err := newClient(f.d, tls.VersionTLS12, &leaf).open(b.addr(t, "mutual"))
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if code, err := request(open); err != nil || code != http.StatusOK {
		t.Fatalf("open connection: %d %v", code, err)
	}
	serial := fmt.Sprintf("%X", f.d.client.Cert.SerialNumber)
	if code := a.adminPost(t, "/api/v1/denylist", `{"serial":"`+serial+`"}`); code != http.StatusCreated {
		t.Fatalf("deny through node a: %d", code)
	}
	f.waitApplied(2, a, b)
	if _, err := request(open); err == nil {
		t.Error("the open connection on node b still serves the denied client")
	}
	if code, resumed, err := resumer.get(b.addr(t, "mutual")); err == nil {
		t.Errorf("node b lets the denied client resume a's session (resumed %v, %d)", resumed, code)
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		if code, _, err := newClient(f.d, v, &leaf).get(b.addr(t, "mutual")); err == nil {
			t.Errorf("node b lets the denied client in (version %x): %d", v, code)
		}
	}
	list, _ := f.store.List(ctxT(t))
	for _, st := range list {
		if st.Revision != 2 || st.State != "ok" {
			t.Errorf("status %+v", st)
		}
	}
}

// TestFleetStartFallsBack: a node restarting into a revision it cannot start (its
// address for a new listener is taken) starts on its cached revision instead, reports
// the newer one as an error, and keeps its cache at the revision it serves.
func TestFleetStartFallsBack(t *testing.T) {
	f, push := newFleet(t, "a")
	a := f.nodes[0]
	f.waitApplied(1, a)
	a.stop()
	rev, _, _ := pushHeldPort(t, push, a)
	path := filepath.Join(a.dir, "node.yaml")
	nc, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	node, err := fleet.NewNode(nc, fleet.NodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := node.Initial(t.Context())
	if err != nil || cfg.Revision != rev {
		t.Fatalf("initial: %v", err)
	}
	opts := server.Options{ConfigPath: path, Config: cfg, Fleet: node}
	if err := server.New(opts).Start(); err == nil {
		t.Fatal("the revision with a taken address started")
	}
	if opts.Config, err = node.Fallback(); err != nil || opts.Config.Revision != 1 {
		t.Fatalf("fallback: %v", err)
	}
	srv := server.New(opts)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { node.Run(ctx, srv); close(done) }()
	defer func() { cancel(); <-done; _ = srv.Shutdown(context.Background()); _ = node.Close() }()
	eventually(t, "the newer revision reported as not applied", func() bool {
		list, _ := f.store.List(ctxT(t))
		return len(list) == 1 && list[0].Revision == 1 && strings.HasPrefix(list[0].State, "error: ")
	})
	data, err := os.ReadFile(filepath.Join(a.dir, "cache", "revision.json"))
	if err != nil || !strings.Contains(string(data), `"revision":1,`) || strings.Contains(string(data), "rev/2/") {
		t.Fatalf("the cache no longer holds revision 1 alone: %v", err)
	}
	leaf := f.d.client.TLS()
	if code, _, err := newClient(f.d, tls.VersionTLS13, &leaf).get(srv.Addr("mutual").String()); err != nil || code != http.StatusOK {
		t.Fatalf("fallen-back node: %d %v", code, err)
	}
}
