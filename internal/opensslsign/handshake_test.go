//go:build openssl && cgo

package opensslsign_test

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"io"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"tlsgate/internal/opensslsign"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
	"tlsgate/internal/tooltest"
)

// counting counts the signatures crypto/tls asks the wrapped key for.
type counting struct {
	*opensslsign.Key
	n atomic.Int32
}

func (c *counting) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	c.n.Add(1)
	return c.Key.Sign(r, d, o)
}

// rsaServer serves TLS on loopback with an RSA-2048 leaf whose key OpenSSL holds; each
// connection gets "ok\n" after its handshake.
func rsaServer(t *testing.T, cfg *tls.Config) (addr string, ca *pkitest.CA, key *counting) {
	t.Helper()
	ca = pkitest.New(t, "opensslsign root", pki.RSA2048)
	leaf := ca.Issue("localhost", pkitest.Server("localhost", "127.0.0.1"))
	_, k := wrappedKey(t, leaf)
	key = &counting{Key: k}
	tc := leaf.TLS()
	tc.PrivateKey = key
	cfg.Certificates = []tls.Certificate{tc}
	return serveOK(t, cfg), ca, key
}

// serveOK serves TLS with cfg on loopback until the test ends; each connection gets
// "ok\n" after its handshake. It returns the address.
func serveOK(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				if c.(*tls.Conn).Handshake() == nil {
					c.Write([]byte("ok\n"))
				}
			})
		}
	})
	return ln.Addr().String()
}

func wrappedKey(t *testing.T, leaf *pkitest.Leaf) (crypto.Signer, *opensslsign.Key) {
	t.Helper()
	s, err := opensslsign.Wrap(leaf.Key)
	if err != nil {
		t.Fatal(err)
	}
	return leaf.Key, s.(*opensslsign.Key)
}

// TestHandshakeGoClient: crypto/tls clients complete TLS 1.3 and TLS 1.2 handshakes
// (ECDHE with the key's signature, and RSA key exchange through Decrypt) and verify
// the server's signature.
func TestHandshakeGoClient(t *testing.T) {
	t.Parallel()
	addr, ca, key := rsaServer(t, &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: []uint16{
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_128_GCM_SHA256}})
	for _, tc := range []struct {
		name    string
		version uint16
		suites  []uint16
		signs   int32
	}{
		{"TLS 1.3", tls.VersionTLS13, nil, 1},
		{"TLS 1.2 ECDHE", tls.VersionTLS12, []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}, 1},
		{"TLS 1.2 RSA key exchange", tls.VersionTLS12, []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := key.n.Load()
			c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost",
				MinVersion: tc.version, MaxVersion: tc.version, CipherSuites: tc.suites})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			line, err := io.ReadAll(c)
			if err != nil || string(line) != "ok\n" {
				t.Fatalf("read %q, %v", line, err)
			}
			if v := c.ConnectionState().Version; v != tc.version {
				t.Fatalf("version %x, want %x", v, tc.version)
			}
			if got := key.n.Load() - before; got != tc.signs {
				t.Fatalf("the wrapped key signed %d times, want %d", got, tc.signs)
			}
		})
	}
}

// TestHandshakeOpenSSLClient: `openssl s_client` verifies the signatures too, for each
// scheme it can ask for: PSS in TLS 1.3 and 1.2, PKCS #1 v1.5 in TLS 1.2.
func TestHandshakeOpenSSLClient(t *testing.T) {
	t.Parallel()
	openssl := tooltest.Path(t, "openssl")
	addr, ca, key := rsaServer(t, &tls.Config{MinVersion: tls.VersionTLS12})
	root := pkitest.Write(t, t.TempDir(), "root.pem", ca.PEM())
	for _, tc := range []struct{ name, version, sigalg, want string }{
		{"TLS 1.3 PSS SHA-256", "-tls1_3", "rsa_pss_rsae_sha256", "RSA-PSS"},
		{"TLS 1.3 PSS SHA-512", "-tls1_3", "rsa_pss_rsae_sha512", "RSA-PSS"},
		{"TLS 1.2 PSS SHA-384", "-tls1_2", "rsa_pss_rsae_sha384", "RSA-PSS"},
		{"TLS 1.2 PKCS1 SHA-256", "-tls1_2", "RSA+SHA256", "RSA"},
		{"TLS 1.2 PKCS1 SHA-512", "-tls1_2", "RSA+SHA512", "RSA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := key.n.Load()
			cmd := exec.Command(openssl, "s_client", "-connect", addr, "-servername", "localhost",
				"-CAfile", root, "-verify_return_error", tc.version, "-sigalgs", tc.sigalg)
			cmd.Stdin = strings.NewReader("")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				t.Fatalf("s_client: %v\n%s", err, out.String())
			}
			s := out.String()
			if !strings.Contains(s, "Verify return code: 0 (ok)") || !strings.Contains(s, "Peer signature type: "+tc.want+"\n") {
				t.Fatalf("s_client did not verify a %s signature:\n%s", tc.want, s)
			}
			if key.n.Load() == before {
				t.Fatal("the handshake did not sign with the wrapped key")
			}
		})
	}
}
