package fleet_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"tlsgate/internal/config"
	"tlsgate/internal/fleet"
	"tlsgate/internal/metrics"
	"tlsgate/internal/proxytest"
	"tlsgate/internal/server"
)

// testNode is one tlsgate instance in fleet mode, in process: a node config in its own
// directory (the cache survives a restart), a server, and the node's watch loop.
type testNode struct {
	name, bind, dir string
	srv             *server.Server
	node            *fleet.Node
	metrics         *metrics.Metrics
	sink            *proxytest.Sink
	stop            func()
}

// nodeConfig is a node's own config: admin on its bind address, and fleet:.
const nodeConfig = `admin: {listen: "%[1]s:0", token_file: admin.token}
fleet:
  etcd: [%[2]s]
  prefix: /tlsgate/test
  instance: %[3]s
  cache_dir: cache
  key_file: %[4]s
  bind: %[1]s
`

// adminToken is every test node's admin API token.
const adminToken = "fleet-test-admin-token-0123456789"

// adminPost sends a change to a node's admin API.
func (n *testNode) adminPost(t testing.TB, path, body string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+n.srv.AdminAddr().String()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// startNode starts (or restarts, in the same directory) a node.
func startNode(t testing.TB, etcd, keyFile, name, bind, dir string) *testNode {
	t.Helper()
	path := filepath.Join(dir, "node.yaml")
	if err := os.WriteFile(path, fmt.Appendf(nil, nodeConfig, bind, etcd, name, keyFile), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "admin.token"), []byte(adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return startNodeConfig(t, path, name, bind, dir)
}

// startNodeConfig starts a node from the node config at path.
func startNodeConfig(t testing.TB, path, name, bind, dir string) *testNode {
	t.Helper()
	nc, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	n := &testNode{name: name, bind: bind, dir: dir, metrics: metrics.New(), sink: proxytest.NewSink()}
	log := n.sink.Logger().With("node", name)
	if n.node, err = fleet.NewNode(nc, fleet.NodeOptions{Log: log, Metrics: n.metrics, Version: "test"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := n.node.Initial(t.Context())
	if err != nil {
		t.Fatalf("node %s: %v", name, err)
	}
	n.srv = server.New(server.Options{ConfigPath: path, Config: cfg, Fleet: n.node, Log: log, Metrics: n.metrics})
	if err := n.srv.Start(); err != nil {
		t.Fatalf("node %s: %v", name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.node.Run(ctx, n.srv); close(done) }()
	stopped := false
	n.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		<-done
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = n.srv.Shutdown(sctx)
		_ = n.node.Close()
	}
	t.Cleanup(n.stop)
	return n
}

// addr is the address listener id of the node is bound to.
func (n *testNode) addr(t testing.TB, id string) string {
	t.Helper()
	a := n.srv.Addr(id)
	if a == nil {
		t.Fatalf("node %s has no listener %q", n.name, id)
	}
	return a.String()
}

// eventually polls cond (a readiness probe, not a timed wait) until it holds or 20 s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// client is a TLS client of the fleet's listeners with its own session cache.
type client struct {
	cfg *tls.Config
}

func newClient(d *pkiDir, version uint16, cert *tls.Certificate) *client {
	c := &tls.Config{RootCAs: d.ca.Pool(), ServerName: "localhost", MinVersion: version, MaxVersion: version,
		ClientSessionCache: tls.NewLRUClientSessionCache(8)}
	if cert != nil {
		c.Certificates = []tls.Certificate{*cert}
	}
	return &client{cfg: c}
}

// get makes one request on a new connection: the status code and whether the
// handshake resumed a session. A refusal is an error.
func (c *client) get(addr string) (int, bool, error) {
	conn, err := c.open(addr)
	if err != nil {
		return 0, false, err
	}
	defer conn.Close()
	code, err := request(conn)
	return code, conn.ConnectionState().DidResume, err
}

// open connects and completes the handshake.
func (c *client) open(addr string) (*tls.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, c.cfg)
	if err != nil {
		return nil, err
	}
	return conn, nil
}

// request sends a keep-alive GET on conn and reads the status; a TLS 1.3 refusal of the
// client certificate arrives here, after the client's side of the handshake.
func request(conn *tls.Conn) (int, error) {
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sb strings.Builder
	_, _ = bufio.NewReader(resp.Body).WriteTo(&sb)
	return resp.StatusCode, nil
}
