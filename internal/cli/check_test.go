package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tlsgate/internal/certfile"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
)

// cutInBlock returns data cut in the middle of its n-th PEM block (1-based).
func cutInBlock(t *testing.T, data []byte, n int) []byte {
	t.Helper()
	off := 0
	for range n - 1 {
		i := bytes.Index(data[off:], []byte("-----END "))
		if i < 0 {
			t.Fatalf("no block %d", n)
		}
		off += i + len("-----END ")
	}
	begin := off + bytes.Index(data[off:], []byte("-----BEGIN "))
	end := off + bytes.Index(data[off:], []byte("-----END "))
	return data[:(begin+end)/2]
}

// TestCheckTruncatedPEM: check refuses a server chain cut in its intermediate, a CA
// bundle cut in its second CA, a key cut in half and a CRL file with garbage after its
// last block, each at its config line, naming the file and the block (issue 12: the
// first two said ok and served the leaf alone, or one CA fewer).
func TestCheckTruncatedPEM(t *testing.T) {
	dir := t.TempDir()
	root := pkitest.New(t, "root", pki.ECDSAP256)
	inter := root.Intermediate("inter")
	other := pkitest.New(t, "other", pki.ECDSAP256)
	leaf := inter.Issue("localhost", pkitest.Server("localhost"))
	key, err := certfile.EncodeKeyPEM(leaf.Key)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"chain.crt":  cutInBlock(t, certfile.EncodePEM(leaf.Cert, inter.Cert), 2),
		"server.key": key,
		"whole.crt":  certfile.EncodePEM(leaf.Cert, inter.Cert),
		"half.key":   key[:len(key)/2],
		"bundle.crt": cutInBlock(t, append(root.PEM(), other.PEM()...), 2),
		"roots.crt":  append(root.PEM(), other.PEM()...),
		"root.crl":   append(root.CRL(time.Hour), "garbage\n"...),
		"tlsgate.yaml": []byte(`certificates:
  - {id: site, cert: chain.crt, key: server.key}
  - {id: site2, cert: whole.crt, key: half.key}
  - {id: clients, ca: bundle.crt}
  - {id: clients2, ca: roots.crt, crl: [root.crl]}
target_groups:
  - {id: web, targets: [{address: 127.0.0.1:1}]}
listeners:
  - {id: a, protocol: https, listen: 127.0.0.1:0, target_group: web,
     ssl: {mode: mutual, server_certificates: [site, site2], ca_certificate: clients}}
  - {id: b, protocol: https, listen: 127.0.0.1:0, target_group: web,
     ssl: {mode: mutual, server_certificates: [site], ca_certificate: clients2}}
`),
	}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	code, stdout, stderr := run("check", "--config", filepath.Join(dir, "tlsgate.yaml"))
	if code != 1 || stdout != "" {
		t.Fatalf("exit %d, stdout %q; want 1 and nothing", code, stdout)
	}
	golden(t, "check-truncated.golden", []byte(strings.ReplaceAll(stderr, dir+string(filepath.Separator), "DIR/")))
}
