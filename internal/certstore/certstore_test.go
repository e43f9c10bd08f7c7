package certstore_test

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"tlsgate/internal/certstore"
	"tlsgate/internal/config"
	"tlsgate/internal/opensslsign"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
)

// TestServerKeysSignThroughOpenSSL: with OpenSSL linked, the store's RSA and ECDSA
// P-256 server keys sign there; without it every key stays as loaded. Each
// identity completes a TLS 1.3 and a TLS 1.2 handshake that a crypto/tls client
// verifies, and a second Build (a reload) wraps again.
func TestServerKeysSignThroughOpenSSL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cas := map[string]*pkitest.CA{"rsa": pkitest.New(t, "rsa root", pki.RSA2048), "ec": pkitest.New(t, "ec root", pki.ECDSAP256)}
	for id, ca := range cas {
		ca.Issue("localhost", pkitest.Server("localhost")).WritePair(t, dir, id)
	}
	yaml := "certificates:\n  - {id: rsa, cert: rsa.crt, key: rsa.key}\n  - {id: ec, cert: ec.crt, key: ec.key}\n"
	cfg, err := config.Parse([]byte(yaml), dir+"/tlsgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		st, err := certstore.Build(cfg, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		_, goRSA := st.Servers["rsa"].Cert.PrivateKey.(*rsa.PrivateKey)
		if goRSA == opensslsign.Enabled {
			t.Fatalf("RSA key is %T with opensslsign.Enabled %v", st.Servers["rsa"].Cert.PrivateKey, opensslsign.Enabled)
		}
		_, goEC := st.Servers["ec"].Cert.PrivateKey.(*ecdsa.PrivateKey)
		if goEC == opensslsign.Enabled {
			t.Fatalf("ECDSA key is %T with opensslsign.Enabled %v", st.Servers["ec"].Cert.PrivateKey, opensslsign.Enabled)
		}
		for id, ca := range cas {
			for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
				handshake(t, st.Servers[id].Cert, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", MinVersion: v, MaxVersion: v})
			}
		}
	}
}

// handshake runs one handshake over loopback and checks the client's read of "ok".
func handshake(t *testing.T, cert tls.Certificate, client *tls.Config) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		s := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
		if err = s.Handshake(); err == nil {
			_, err = s.Write([]byte("ok"))
		}
		done <- err
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), client)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	c.Close()
	if err != nil || string(b) != "ok" {
		t.Fatalf("read %q, %v", b, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
