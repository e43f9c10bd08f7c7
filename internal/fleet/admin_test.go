package fleet_test

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"tlsgate/internal/certfile"
	"tlsgate/internal/config"
	"tlsgate/internal/pkitest"
)

// TestFleetAdminUpload: a certificate uploaded through node a's admin API is stored
// sealed in the next revision, reaches node b, and leaves no file on a's disk.
func TestFleetAdminUpload(t *testing.T) {
	f, _ := newFleet(t, "a", "b")
	a, b := f.nodes[0], f.nodes[1]
	f.waitApplied(1, a, b)
	leaf := f.d.ca.Issue("site2", pkitest.Server("site2.example"))
	key, err := certfile.EncodeKeyPEM(leaf.Key)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"id": "site2", "cert": string(certfile.EncodePEM(leaf.Chain...)), "key": string(key)})
	if code := a.adminPost(t, "/api/v1/certificates", string(body)); code != http.StatusCreated {
		t.Fatalf("upload through node a: %d", code)
	}
	f.waitApplied(2, a, b)
	cfg, err := b.node.Current()
	if err != nil || !slices.ContainsFunc(cfg.Certificates, func(c config.Certificate) bool { return c.ID == "site2" }) {
		t.Fatalf("node b's config lacks the upload: %v", err)
	}
	uploads, _ := filepath.Glob(filepath.Join(a.dir, "cache", "certs", "*"))
	if len(uploads) > 0 {
		t.Errorf("uploaded files left on node a's disk: %v", uploads)
	}
	r, _, err := f.store.Get(ctxT(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, v := range r.Files {
		found = found || string(v) == string(key)
	}
	if !found {
		t.Error("the uploaded key is not in revision 2")
	}
}

// TestFleetAdminConcurrentWrites: changes made at once through both nodes' admin APIs
// all land (a compare-and-swap lost to the other node is retried on the newer revision).
func TestFleetAdminConcurrentWrites(t *testing.T) {
	f, _ := newFleet(t, "a", "b")
	a, b := f.nodes[0], f.nodes[1]
	f.waitApplied(1, a, b)
	var wg sync.WaitGroup
	const each = 4
	for i, n := range []*testNode{a, b} {
		wg.Go(func() {
			for j := range each {
				if code := n.adminPost(t, "/api/v1/denylist", fmt.Sprintf(`{"serial":"%X"}`, 0x100*(i+1)+j)); code != http.StatusCreated {
					t.Errorf("node %s write %d: %d", n.name, j, code)
				}
			}
		})
	}
	wg.Wait()
	f.waitApplied(1+2*each, a, b)
	cfg, err := a.node.Current()
	if err != nil || len(cfg.Denylist.Serials) != 2*each {
		t.Fatalf("denylist after concurrent writes: %v %v", cfg.Denylist.Serials, err)
	}
	if _, err := os.Stat(filepath.Join(b.dir, "cache", "revision.json")); err != nil {
		t.Fatal(err)
	}
}

// TestFleetAdminSSL: a node's admin.ssl names the fleet's certificates (the node config
// holds none); the admin API then requires a client certificate the fleet's CA issued.
func TestFleetAdminSSL(t *testing.T) {
	f, _ := newFleet(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "node.yaml")
	yaml := fmt.Sprintf(`admin:
  listen: "127.0.0.2:0"
  ssl: {mode: mutual, server_certificates: [site], ca_certificate: clients}
fleet: {etcd: [%s], prefix: /tlsgate/test, instance: s, key_file: %s, bind: 127.0.0.2}
`, f.etcd.Endpoint, f.keyFile)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	n := startNodeConfig(t, path, "s", "127.0.0.2", dir)
	leaf := f.d.client.TLS()
	get := func(cert *tls.Certificate) (int, error) {
		tc := &tls.Config{RootCAs: f.d.ca.Pool(), ServerName: "localhost"}
		if cert != nil {
			tc.Certificates = []tls.Certificate{*cert}
		}
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
		resp, err := c.Get("https://" + n.srv.AdminAddr().String() + "/api/v1/config")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := get(&leaf); err != nil || code != http.StatusOK {
		t.Fatalf("admin API with the client certificate: %d %v", code, err)
	}
	if _, err := get(nil); err == nil {
		t.Fatal("admin API without a client certificate answered")
	}
}

// TestFleetAdminUnappliable: a change made through node b's admin API that b cannot
// apply (its address for a new listener is taken) is stored and applied by a, while b
// keeps serving its revision and says so: status shows b at that revision with the
// error, as for a pushed revision it cannot apply.
func TestFleetAdminUnappliable(t *testing.T) {
	f, _ := newFleet(t, "a", "b")
	a, b := f.nodes[0], f.nodes[1]
	f.waitApplied(1, a, b)
	held, err := net.Listen("tcp", b.bind+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	_, port, _ := net.SplitHostPort(held.Addr().String())
	body := fmt.Sprintf(`{"id": "fixed", "protocol": "https", "listen": "127.0.0.1:%s", "target_group": "web",
	  "ssl": {"mode": "one_way", "server_certificates": ["site"]}}`, port)
	if code := b.adminPost(t, "/api/v1/listeners", body); code == http.StatusCreated {
		t.Fatalf("a listener node b cannot bind was reported created on b")
	}
	f.waitApplied(2, a)
	eventually(t, "node b reports the error at revision 1", func() bool {
		list, _ := f.store.List(ctxT(t))
		for _, st := range list {
			if st.Instance == "b" && st.Revision == 1 && strings.HasPrefix(st.State, "error: ") && strings.Contains(st.State, "fixed") {
				return true
			}
		}
		return false
	})
	if b.node.Applied() != 1 || metricValue(t, b, "tlsgate_fleet_revision") != 1 {
		t.Fatalf("node b claims revision %d (metric %v), serves 1", b.node.Applied(), metricValue(t, b, "tlsgate_fleet_revision"))
	}
	// The address freed, b applies the stored revision once it is retried (a newer one).
	held.Close()
	if code := a.adminPost(t, "/api/v1/denylist", `{"serial": "0A"}`); code != http.StatusCreated {
		t.Fatalf("denylist through a: %d", code)
	}
	f.waitApplied(3, a, b)
}
