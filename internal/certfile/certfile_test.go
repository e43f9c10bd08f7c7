package certfile_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"

	"software.sslmate.com/src/go-pkcs12"

	"tlsgate/internal/certfile"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
)

func keyEncodings(t *testing.T, k crypto.Signer) map[string][]byte {
	t.Helper()
	p8, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	enc := map[string][]byte{
		"PKCS#8 PEM": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}),
		"PKCS#8 DER": p8,
	}
	switch k := k.(type) {
	case *rsa.PrivateKey:
		enc["PKCS#1 PEM"] = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		enc["SEC1 PEM"] = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
		enc["SEC1 DER"] = der
	}
	return enc
}

// TestServerPairFormats loads a server certificate from every supported encoding of
// certificate and key, for every key type, with the chain in the wrong order.
func TestServerPairFormats(t *testing.T) {
	for _, kt := range []pki.KeyType{pki.ECDSAP256, pki.RSA2048, pki.Ed25519} {
		t.Run(string(kt), func(t *testing.T) {
			ca := pkitest.New(t, "root", kt)
			inter := ca.Intermediate("inter")
			leaf := inter.Issue("localhost", pkitest.Server("localhost"))
			reversed := certfile.EncodePEM(inter.Cert, leaf.Cert) // intermediate first
			for name, key := range keyEncodings(t, leaf.Key) {
				t.Run(name, func(t *testing.T) {
					tc, err := certfile.ServerPair(reversed, key, "")
					if err != nil {
						t.Fatal(err)
					}
					if !tc.Leaf.Equal(leaf.Cert) || len(tc.Certificate) != 2 || !bytes.Equal(tc.Certificate[1], inter.Cert.Raw) {
						t.Fatal("chain not put in leaf-first order")
					}
				})
			}
			p12, err := pkcs12.Modern.Encode(leaf.Key, leaf.Cert, []*x509.Certificate{inter.Cert}, "secret")
			if err != nil {
				t.Fatal(err)
			}
			t.Run("PKCS#12", func(t *testing.T) {
				tc, err := certfile.ServerPair(p12, nil, "secret")
				if err != nil {
					t.Fatal(err)
				}
				if !tc.Leaf.Equal(leaf.Cert) || len(tc.Certificate) != 2 {
					t.Fatal("PKCS#12 chain lost")
				}
				if _, err := certfile.ServerPair(p12, nil, "wrong"); !errors.Is(err, certfile.ErrBadPassword) {
					t.Fatalf("wrong password: %v", err)
				}
			})
			t.Run("DER certificate", func(t *testing.T) {
				if _, err := certfile.ServerPair(leaf.Cert.Raw, keyEncodings(t, leaf.Key)["PKCS#8 PEM"], ""); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

// TestBadInputs: each bad input gives one clear error.
func TestBadInputs(t *testing.T) {
	ca := pkitest.New(t, "root", pki.ECDSAP256)
	leaf := ca.Issue("x", pkitest.Server("x"))
	other := ca.Issue("y", pkitest.Server("y"))
	certPEM := certfile.EncodePEM(leaf.Cert)
	keyPEM, err := certfile.EncodeKeyPEM(leaf.Key)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := certfile.EncodeKeyPEM(other.Key)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		cert, key []byte
		want      error
		wantText  string
	}{
		{"empty certificate", nil, keyPEM, certfile.ErrEmpty, ""},
		{"empty key", certPEM, []byte("\n"), certfile.ErrEmpty, "key: "},
		{"truncated PEM", certPEM[:len(certPEM)/2], keyPEM, nil, ""},
		{"not a certificate", []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), keyPEM, certfile.ErrNoCertificate, ""},
		{"key of another certificate", certPEM, otherKey, certfile.ErrKeyMismatch, ""},
		{"encrypted key", certPEM, []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"), certfile.ErrEncryptedKey, ""},
		{"certificate as key", certPEM, certPEM, certfile.ErrNoKey, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := certfile.ServerPair(tc.cert, tc.key, "")
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("error %q, want %q", err, tc.want)
			}
			if !bytes.Contains([]byte(err.Error()), []byte(tc.wantText)) {
				t.Fatalf("error %q lacks %q", err, tc.wantText)
			}
			if bytes.Count([]byte(err.Error()), []byte("\n")) > 0 {
				t.Fatalf("error spans lines: %q", err)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	ca := pkitest.New(f, "root", pki.ECDSAP256)
	leaf := ca.Issue("x")
	kp, err := certfile.EncodeKeyPEM(leaf.Key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(certfile.EncodePEM(leaf.Cert))
	f.Add(leaf.Cert.Raw)
	f.Add(kp)
	f.Fuzz(func(t *testing.T, data []byte) {
		certs, err := certfile.ParseCertificates(data)
		if err == nil && len(certs) == 0 {
			t.Fatal("no error and no certificate")
		}
		k, err := certfile.ParsePrivateKey(data)
		if err == nil && k == nil {
			t.Fatal("no error and no key")
		}
	})
}
