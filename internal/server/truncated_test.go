package server_test

import (
	"bytes"
	"crypto/tls"
	"strings"
	"testing"

	"tlsgate/internal/certfile"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
)

// TestReloadTruncatedChain: a reload whose server chain has its intermediate cut
// mid-block fails, naming the file and the block, and the old certificate keeps
// serving (issue 12: the leaf was loaded alone and served without its intermediate).
// Once the file is whole, the reload serves leaf and intermediate.
func TestReloadTruncatedChain(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	e.stopWatching() // reload by hand: the test writes two files
	leaf := e.inter.Issue("localhost", pkitest.Server("localhost", "127.0.0.1"))
	chain := certfile.EncodePEM(leaf.Cert, e.inter.Cert)
	key, err := certfile.EncodeKeyPEM(leaf.Key)
	if err != nil {
		t.Fatal(err)
	}
	second := bytes.LastIndex(chain, []byte("-----BEGIN "))
	for _, cut := range []int{second + 20, (second + len(chain)) / 2, len(chain) - 10} {
		e.writeFile("server.crt", chain[:cut])
		e.writeFile("server.key", key)
		err := e.srv.Reload()
		if err == nil || !strings.Contains(err.Error(), "server.crt: PEM block 2 is damaged or truncated") {
			t.Fatalf("cut at %d of %d: reload error %v", cut, len(chain), err)
		}
		cs := e.handshake(t)
		if cs.PeerCertificates[0].Issuer.CommonName != "test root" {
			t.Fatalf("cut at %d: serving %v after a failed reload, want the old certificate", cut, cs.PeerCertificates[0].Subject)
		}
	}
	e.writeFile("server.crt", chain)
	if err := e.srv.Reload(); err != nil {
		t.Fatal(err)
	}
	if cs := e.handshake(t); len(cs.PeerCertificates) != 2 || cs.PeerCertificates[0].Issuer.CommonName != "test intermediate" {
		t.Fatalf("after the whole chain: %d certificates from %v", len(cs.PeerCertificates), cs.PeerCertificates[0].Issuer)
	}
}

// handshake connects to the one_way listener and returns the connection state.
func (e *env) handshake(t *testing.T) tls.ConnectionState {
	t.Helper()
	cfg := e.tlsConfig(tls.VersionTLS13, nil)
	c, err := tls.Dial("tcp", e.addr("one_way"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState()
}
