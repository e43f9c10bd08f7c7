package fleet_test

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestFleetCRLFetchedOnce: a CRL named by URL is fetched by one node and published
// through etcd: the second node starts without asking the CA, and a refresh by the
// elected node alone revokes the client on every node.
func TestFleetCRLFetchedOnce(t *testing.T) {
	d := newPKI(t)
	var crl atomic.Value
	crl.Store(d.ca.CRL(10 * time.Minute)) // past half of its validity: every refresh fetches
	var fetches atomic.Int32
	ca := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		_, _ = w.Write(crl.Load().([]byte))
	}))
	defer ca.Close()
	f, _ := newFleetWithPKI(t, d, ", crl_urls: ["+ca.URL+"/ca.crl]", "a", "b")
	a, b := f.nodes[0], f.nodes[1]
	f.waitApplied(1, a, b)
	if n := fetches.Load(); n != 1 {
		t.Fatalf("the CA was asked %d times by two starting nodes, want 1", n)
	}
	leaf := d.client.TLS()
	for _, n := range f.nodes {
		if code, _, err := newClient(d, tls.VersionTLS13, &leaf).get(n.addr(t, "mutual")); err != nil || code != http.StatusOK {
			t.Fatalf("node %s with the fetched CRL: %d %v", n.name, code, err)
		}
	}
	var leader *testNode
	eventually(t, "a node elected", func() bool {
		for _, n := range f.nodes {
			if n.node.FetchesCRLs() {
				leader = n
			}
		}
		return leader != nil
	})
	crl.Store(d.ca.CRL(10*time.Minute, d.client.Cert))
	for _, n := range f.nodes {
		if err := n.srv.FetchCRLs(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if n := fetches.Load(); n != 2 {
		t.Fatalf("a refresh asked the CA %d times in all, want 2 (only the elected node)", n)
	}
	for _, n := range f.nodes {
		eventually(t, "node "+n.name+" refuses the revoked client", func() bool {
			_, _, err := newClient(d, tls.VersionTLS13, &leaf).get(n.addr(t, "mutual"))
			return err != nil
		})
	}
}
