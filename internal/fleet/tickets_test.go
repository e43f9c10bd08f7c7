package fleet_test

import (
	"crypto/tls"
	"net/http"
	"slices"
	"testing"

	"tlsgate/internal/ticketkeys"
)

// masterIDs are the ids of a node's ticket masters, newest first.
func masterIDs(n *testNode) []string {
	var ids []string
	for _, m := range n.srv.TicketKeys().Masters() {
		ids = append(ids, m.ID())
	}
	return ids
}

// waitTickets waits until every node uses the fleet's (first) ticket set.
func waitTickets(t testing.TB, f *fleetEnv) {
	t.Helper()
	eventually(t, "every node uses the fleet's ticket keys", func() bool {
		ms, _, _, err := f.store.Tickets(ctxT(t))
		if err != nil || len(ms) == 0 {
			return false
		}
		for _, n := range f.nodes {
			if ids := masterIDs(n); len(ids) != len(ms) || ids[0] != ms[0].ID() {
				return false
			}
		}
		return true
	})
}

// TestFleetTickets: one elected node stores the fleet's ticket keys in etcd; a TLS 1.2
// and a TLS 1.3 session from node a resumes on node b; a ticket never resumes into
// another policy (one-way into mutual, or another listener) on the other node.
func TestFleetTickets(t *testing.T) {
	f, _ := newFleet(t, "a", "b")
	a, b := f.nodes[0], f.nodes[1]
	f.waitApplied(1, a, b)
	waitTickets(t, f)
	leaf := f.d.client.TLS()
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		name := map[uint16]string{tls.VersionTLS12: "TLS 1.2", tls.VersionTLS13: "TLS 1.3"}[v]
		t.Run(name, func(t *testing.T) {
			c := newClient(f.d, v, &leaf)
			if code, resumed, err := c.get(a.addr(t, "mutual")); err != nil || code != http.StatusOK || resumed {
				t.Fatalf("first handshake on a: %d resumed=%v %v", code, resumed, err)
			}
			if code, resumed, err := c.get(b.addr(t, "mutual")); err != nil || code != http.StatusOK || !resumed {
				t.Fatalf("on b with a's ticket: %d resumed=%v %v", code, resumed, err)
			}
			// A one-way ticket from a does not resume into b's mutual listener.
			c = newClient(f.d, v, &leaf)
			if _, _, err := c.get(a.addr(t, "oneway")); err != nil {
				t.Fatal(err)
			}
			if code, resumed, err := c.get(b.addr(t, "mutual")); err != nil || code != http.StatusOK || resumed {
				t.Fatalf("one-way ticket into mutual: %d resumed=%v %v", code, resumed, err)
			}
			// Nor a ticket of a's mutual listener into b's other mutual listener.
			c = newClient(f.d, v, &leaf)
			if _, _, err := c.get(a.addr(t, "mutual")); err != nil {
				t.Fatal(err)
			}
			if code, resumed, err := c.get(b.addr(t, "mutual2")); err != nil || code != http.StatusOK || resumed {
				t.Fatalf("ticket into another listener: %d resumed=%v %v", code, resumed, err)
			}
		})
	}
}

// TestFleetTicketRotation: the elected node rotates the set, keeping the previous two;
// a session from before a rotation still resumes on the other node.
func TestFleetTicketRotation(t *testing.T) {
	f, _ := newFleet(t, "a", "b")
	a, b := f.nodes[0], f.nodes[1]
	var first []ticketkeys.Master
	eventually(t, "a ticket set", func() bool {
		first, _, _, _ = f.store.Tickets(ctxT(t))
		return len(first) == 1 && slices.Equal(masterIDs(a), masterIDs(b)) && len(masterIDs(a)) == 1 && masterIDs(a)[0] == first[0].ID()
	})
	leaf := f.d.client.TLS()
	c := newClient(f.d, tls.VersionTLS13, &leaf)
	if _, _, err := c.get(a.addr(t, "mutual")); err != nil {
		t.Fatal(err)
	}
	for _, n := range f.nodes {
		n.node.RotateNow()
	}
	eventually(t, "rotated everywhere", func() bool {
		ms, _, _, _ := f.store.Tickets(ctxT(t))
		return len(ms) == 2 && len(masterIDs(a)) == 2 && slices.Equal(masterIDs(a), masterIDs(b))
	})
	if code, resumed, err := c.get(b.addr(t, "mutual")); err != nil || code != http.StatusOK || !resumed {
		t.Fatalf("a ticket from before the rotation on b: %d resumed=%v %v", code, resumed, err)
	}
	eventually(t, "three keys kept after more rotations", func() bool {
		for _, n := range f.nodes {
			n.node.RotateNow()
		}
		ms, _, _, _ := f.store.Tickets(ctxT(t))
		return len(ms) == 3 && len(masterIDs(b)) == 3 && ms[0].ID() != first[0].ID() && ms[2].ID() != first[0].ID()
	})
}
