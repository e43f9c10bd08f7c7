package fleet_test

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
