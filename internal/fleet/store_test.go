package fleet_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"tlsgate/internal/fleet"
)

const siteConfig = `certificates:
  - {id: site, cert: server.crt, key: server.key}
  - {id: clients, ca: ca.crt}
target_groups:
  - {id: web, targets: [{address: 127.0.0.1:9}]}
listeners:
  - {id: web, protocol: https, listen: 127.0.0.1:0, target_group: web,
     ssl: {mode: mutual, server_certificates: [site], ca_certificate: clients}}
`

func TestPushPullRoundTrip(t *testing.T) {
	d := newPKI(t)
	_, keys := testKeys(t)
	s, _ := newStore(t, keys)
	ctx := ctxT(t)
	r, err := fleet.Bundle(d.write(t, "fleet.yaml", siteConfig))
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.Push(ctx, r, 0)
	if err != nil || n != 1 {
		t.Fatalf("push: %d %v", n, err)
	}
	got, _, err := s.Get(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.Number != 1 || !bytes.Equal(got.Config, r.Config) || len(got.Files) != 3 || !bytes.Equal(got.Files["server.key"], d.keyPEM) {
		t.Fatalf("pulled revision differs: %d, %d files", got.Number, len(got.Files))
	}
	// A compare-and-swap on a stale revision stores nothing.
	if _, err := s.Push(ctx, r, 0); !errors.Is(err, fleet.ErrConflict) {
		t.Fatalf("push expecting 0 at revision 1: %v, want a conflict", err)
	}
	if n, _ := s.Head(ctx); n != 1 {
		t.Fatalf("head %d after a failed compare-and-swap", n)
	}
	if n, err := s.Push(ctx, r, 1); err != nil || n != 2 {
		t.Fatalf("push expecting 1: %d %v", n, err)
	}
	// Without --expect-revision, pushes follow each other; old revisions are pruned.
	for range fleet.Keep + 1 {
		if _, err := s.Push(ctx, r, -1); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.Get(ctx, 1); err == nil {
		t.Fatal("revision 1 is still stored after more than Keep pushes")
	}
}

// TestNoKeyInEtcd scans every value under the prefix for the private key in any
// encoding: PEM, its base64 body, the DER, hex of the DER.
func TestNoKeyInEtcd(t *testing.T) {
	d := newPKI(t)
	_, keys := testKeys(t)
	s, _ := newStore(t, keys)
	ctx := ctxT(t)
	r, err := fleet.Bundle(d.write(t, "fleet.yaml", siteConfig))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Push(ctx, r, -1); err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(d.keyPEM)
	der := blk.Bytes
	needles := map[string][]byte{
		"PEM header": []byte("PRIVATE KEY"),
		"DER":        der[len(der)/2-16 : len(der)/2+16],
		"base64":     []byte(base64.StdEncoding.EncodeToString(der)[8:40]),
		"hex":        []byte(hex.EncodeToString(der)[16:80]),
	}
	resp, err := s.Client.Get(ctx, s.Prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) < 4 {
		t.Fatalf("only %d keys stored", len(resp.Kvs))
	}
	for _, kv := range resp.Kvs {
		for what, n := range needles {
			if bytes.Contains(kv.Value, n) || bytes.Contains(bytes.ToLower(kv.Value), bytes.ToLower(n)) {
				t.Errorf("%s holds the private key (%s)", kv.Key, what)
			}
		}
	}
}

func TestSeal(t *testing.T) {
	_, k := testKeys(t)
	sealed := k.Seal("rev/1/config", []byte("secret"))
	if got, err := k.Open("rev/1/config", sealed); err != nil || string(got) != "secret" {
		t.Fatalf("open: %q %v", got, err)
	}
	if _, err := k.Open("rev/2/config", sealed); err == nil {
		t.Error("a value moved to another key opened")
	}
	bad := bytes.Clone(sealed)
	bad[len(bad)-1] ^= 1
	if _, err := k.Open("rev/1/config", bad); err == nil {
		t.Error("a tampered value opened")
	}
	_, other := testKeys(t)
	if _, err := other.Open("rev/1/config", sealed); !errors.Is(err, fleet.ErrWrongKey) {
		t.Errorf("another key: %v, want ErrWrongKey", err)
	}
	// A text key file: the first line seals, every line opens (key_file rotation).
	two, err := fleet.NewKeys(bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32))
	if err != nil {
		t.Fatal(err)
	}
	old, _ := fleet.NewKeys(bytes.Repeat([]byte{2}, 32))
	if _, err := two.Open("x", old.Seal("x", []byte("v"))); err != nil {
		t.Errorf("the second key of a set does not open: %v", err)
	}
	if !strings.Contains(string(two.Seal("x", nil)), "tlsgate-sealed-v1") {
		t.Error("no format marker")
	}
}
