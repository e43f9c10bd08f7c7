package certfile_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tlsgate/internal/certfile"
	"tlsgate/internal/tooltest"
)

// TestSerialHexOpenSSL prints serials with a leading zero nibble, a high bit set, one
// byte, and RFC 5280's 20 bytes, and compares with `openssl x509 -serial`.
func TestSerialHexOpenSSL(t *testing.T) {
	t.Parallel()
	serials := map[string]string{
		"0a":  "0A",
		"80":  "80",
		"1":   "01",
		"abc": "0ABC",
		"0123456789abcdef0123456789abcdef01234567": "0123456789ABCDEF0123456789ABCDEF01234567",
		"7fffffffffffffffffffffffffffffff":         "7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
	}
	if certfile.SerialHex(big.NewInt(0)) != "00" {
		t.Errorf("zero: %q", certfile.SerialHex(big.NewInt(0)))
	}
	openssl := tooltest.Optional(t, "openssl") // "": SerialHex alone, without the cross-check
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for in, want := range serials {
		s, _ := new(big.Int).SetString(in, 16)
		if got := certfile.SerialHex(s); got != want {
			t.Errorf("SerialHex(%s) = %s, want %s", in, got, want)
		}
		if openssl == "" {
			continue
		}
		tmpl := &x509.Certificate{SerialNumber: s, Subject: pkix.Name{CommonName: "s"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, in+".pem")
		if err := os.WriteFile(path, certfile.EncodePEM(c), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(openssl, "x509", "-noout", "-serial", "-in", path).Output()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimPrefix(strings.TrimSpace(string(out)), "serial="); got != certfile.SerialHex(c.SerialNumber) {
			t.Errorf("openssl prints %s, SerialHex %s", got, certfile.SerialHex(c.SerialNumber))
		}
	}
}
