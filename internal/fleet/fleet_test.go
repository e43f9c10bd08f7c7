package fleet_test

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	"tlsgate/internal/etcdtest"
	"tlsgate/internal/fleet"
	"tlsgate/internal/proxytest"
)

// fleetConfig is the fleet's config: a mutual listener trusting "clients", a one-way
// listener, and extra listeners (YAML lines) a test adds.
const fleetConfig = `certificates:
  - {id: site, cert: server.crt, key: server.key}
  - {id: clients, ca: ca.crt%[3]s}
  - {id: others, ca: other.crt}
target_groups:
  - {id: web, targets: [{address: %[1]s}]}
listeners:
  - {id: mutual, protocol: https, listen: 127.0.0.1:0, target_group: web,
     ssl: {mode: mutual, server_certificates: [site], ca_certificate: clients}}
  - {id: oneway, protocol: https, listen: 127.0.0.1:0, target_group: web,
     ssl: {mode: one_way, server_certificates: [site]}}
  - {id: mutual2, protocol: https, listen: 127.0.0.1:0, target_group: web,
     ssl: {mode: mutual, server_certificates: [site], ca_certificate: clients}}
%[2]s`

// fleetEnv is a fleet of nodes on one etcd.
type fleetEnv struct {
	t       testing.TB
	d       *pkiDir
	store   *fleet.Store
	keyFile string
	backend string
	nodes   []*testNode
	etcd    *etcdtest.Server
}

func newFleet(t testing.TB, names ...string) (*fleetEnv, func(extra string) int64) {
	t.Helper()
	return newFleetWithPKI(t, newPKI(t), "", names...)
}

// newFleetWithPKI is newFleet on the PKI d, with extra YAML in the "clients" CA entry
// (", crl_urls: …").
func newFleetWithPKI(t testing.TB, d *pkiDir, clients string, names ...string) (*fleetEnv, func(extra string) int64) {
	t.Helper()
	keyFile, keys := testKeys(t)
	s, e := newStore(t, keys)
	f := &fleetEnv{t: t, d: d, store: s, keyFile: keyFile, etcd: e, backend: proxytest.Backend(t).HTTP.Addr().String()}
	push := func(extra string) int64 {
		t.Helper()
		r, err := fleet.Bundle(d.write(t, "fleet.yaml", fmt.Sprintf(fleetConfig, f.backend, extra, clients)))
		if err != nil {
			t.Fatal(err)
		}
		n, err := s.Push(ctxT(t), r, -1)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	push("")
	for i, name := range names {
		f.nodes = append(f.nodes, startNode(t, e.Endpoint, keyFile, name, fmt.Sprintf("127.0.0.%d", i+2), t.TempDir()))
	}
	return f, push
}

// waitApplied waits until every node serves revision rev and says so in status.
func (f *fleetEnv) waitApplied(rev int64, nodes ...*testNode) {
	f.t.Helper()
	eventually(f.t, fmt.Sprintf("revision %d applied everywhere", rev), func() bool {
		list, err := f.store.List(ctxT(f.t))
		if err != nil {
			return false
		}
		ok := 0
		for _, n := range nodes {
			for _, st := range list {
				if st.Instance == n.name && st.Revision == rev && st.State == "ok" && n.node.Applied() == rev {
					ok++
				}
			}
		}
		return ok == len(nodes)
	})
}

func TestFleetServesAndApplies(t *testing.T) {
	f, push := newFleet(t, "a", "b")
	a, b := f.nodes[0], f.nodes[1]
	f.waitApplied(1, a, b)
	leaf := f.d.client.TLS()
	for _, n := range f.nodes {
		if !strings.HasPrefix(n.addr(t, "mutual"), n.bind+":") {
			t.Fatalf("node %s listens on %s, not on its bind address", n.name, n.addr(t, "mutual"))
		}
		if code, _, err := newClient(f.d, tls.VersionTLS13, &leaf).get(n.addr(t, "mutual")); err != nil || code != http.StatusOK {
			t.Fatalf("node %s: %d %v", n.name, code, err)
		}
	}
	list, err := f.store.List(ctxT(t))
	if err != nil || len(list) != 2 || list[0].Version != "test" || list[0].Since.IsZero() {
		t.Fatalf("status: %+v %v", list, err)
	}

	// A new push reaches all: a new listener appears on both.
	rev := push(`  - {id: extra, protocol: https, listen: 127.0.0.1:0, target_group: web,
     ssl: {mode: one_way, server_certificates: [site]}}
`)
	f.waitApplied(rev, a, b)
	for _, n := range f.nodes {
		if code, _, err := newClient(f.d, tls.VersionTLS12, nil).get(n.addr(t, "extra")); err != nil || code != http.StatusOK {
			t.Fatalf("node %s, new listener: %d %v", n.name, code, err)
		}
	}
	if got := metricValue(t, a, "tlsgate_fleet_revision"); got != float64(rev) {
		t.Errorf("tlsgate_fleet_revision %v, want %d", got, rev)
	}
	if got := metricValue(t, a, "tlsgate_fleet_connected"); got != 1 {
		t.Errorf("tlsgate_fleet_connected %v, want 1", got)
	}
}

// TestFleetUnappliable: a revision one node cannot apply (its bind address is taken for
// the new listener's port) is reported in its status while the other applies it; it
// keeps serving the previous revision.
func TestFleetUnappliable(t *testing.T) {
	f, push := newFleet(t, "a", "b")
	a, b := f.nodes[0], f.nodes[1]
	f.waitApplied(1, a, b)
	rev, held, port := pushHeldPort(t, push, b)
	f.waitApplied(rev, a)
	eventually(t, "node b reports the error", func() bool {
		list, _ := f.store.List(ctxT(t))
		for _, st := range list {
			if st.Instance == "b" && st.Revision == rev-1 && strings.HasPrefix(st.State, "error: ") && strings.Contains(st.State, "fixed") {
				return true
			}
		}
		return false
	})
	if b.node.Applied() != rev-1 || metricValue(t, b, "tlsgate_fleet_apply_errors_total") != 1 {
		t.Fatalf("node b serves %d (want %d), apply errors %v", b.node.Applied(), rev-1, metricValue(t, b, "tlsgate_fleet_apply_errors_total"))
	}
	leaf := f.d.client.TLS()
	if code, _, err := newClient(f.d, tls.VersionTLS13, &leaf).get(b.addr(t, "mutual")); err != nil || code != http.StatusOK {
		t.Fatalf("node b stopped serving: %d %v", code, err)
	}
	// The address freed, the next revision applies on b too.
	held.Close()
	rev = push(fmt.Sprintf(`  - {id: fixed, protocol: https, listen: 127.0.0.1:%s, target_group: web,
     ssl: {mode: one_way, server_certificates: [site]}, idle_timeout: 60s}
`, port))
	f.waitApplied(rev, a, b)
}

// metricValue reads one unlabelled metric of a node.
func metricValue(t testing.TB, n *testNode, name string) float64 {
	t.Helper()
	mfs, err := n.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if g := m.GetGauge(); g != nil {
			return g.GetValue()
		}
		return m.GetCounter().GetValue()
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestFleetReloadKeepsServing: a reload of a fleet node (SIGHUP, a fetched CRL or OCSP
// staple) rebuilds the fleet's revision; it never reads the node config as the config
// to serve (which has no listeners: every listener would be drained).
func TestFleetReloadKeepsServing(t *testing.T) {
	f, _ := newFleet(t, "a")
	a := f.nodes[0]
	f.waitApplied(1, a)
	if err := a.srv.Reload(); err != nil {
		t.Fatal(err)
	}
	leaf := f.d.client.TLS()
	if code, _, err := newClient(f.d, tls.VersionTLS13, &leaf).get(a.addr(t, "mutual")); err != nil || code != http.StatusOK {
		t.Fatalf("after a reload: %d %v", code, err)
	}
}

// TestFleetWrongKey: a revision sealed with a key a node's key_file lacks is not
// applied; the node keeps serving and says why in status.
func TestFleetWrongKey(t *testing.T) {
	f, _ := newFleet(t, "a")
	a := f.nodes[0]
	f.waitApplied(1, a)
	_, other := testKeys(t)
	r, err := fleet.Bundle(f.d.write(t, "fleet.yaml", fmt.Sprintf(fleetConfig, f.backend, "", "")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&fleet.Store{Client: f.store.Client, Prefix: f.store.Prefix, Keys: other}).Push(ctxT(t), r, 1); err != nil {
		t.Fatal(err)
	}
	eventually(t, "status says the key differs", func() bool {
		list, _ := f.store.List(ctxT(t))
		return len(list) == 1 && list[0].Revision == 1 && strings.Contains(list[0].State, "another fleet key")
	})
	leaf := f.d.client.TLS()
	if code, _, err := newClient(f.d, tls.VersionTLS13, &leaf).get(a.addr(t, "mutual")); err != nil || code != http.StatusOK {
		t.Fatalf("node a stopped serving: %d %v", code, err)
	}
}

// pushHeldPort pushes a revision with a listener on a port of n's address that the
// test holds (until it closes held, or ends), so n cannot apply the revision; it
// returns the revision, the holding socket and the port.
func pushHeldPort(t *testing.T, push func(string) int64, n *testNode) (rev int64, held net.Listener, port string) {
	t.Helper()
	held, err := net.Listen("tcp", n.bind+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { held.Close() })
	_, port, _ = net.SplitHostPort(held.Addr().String())
	rev = push(fmt.Sprintf(`  - {id: fixed, protocol: https, listen: 127.0.0.1:%s, target_group: web,
     ssl: {mode: one_way, server_certificates: [site]}}
`, port))
	return rev, held, port
}
