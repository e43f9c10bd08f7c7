package certfile_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"software.sslmate.com/src/go-pkcs12"

	"tlsgate/internal/certfile"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
	"tlsgate/internal/tooltest"
)

// TestP12Encryption: the algorithms of a PKCS#12 file are read without its password
// (user-asks 2.5 item 8: legacy or modern, for OS import compatibility), for go-pkcs12's
// encoders and for what openssl pkcs12 -export writes with and without -legacy.
func TestP12Encryption(t *testing.T) {
	ca := pkitest.New(t, "root", pki.ECDSAP256)
	leaf := ca.Issue("alice")
	want := map[string]certfile.P12Info{
		"modern":    {Certs: "AES-256-CBC/PBKDF2-HMAC-SHA256", Key: "AES-256-CBC/PBKDF2-HMAC-SHA256", MAC: "SHA-256"},
		"legacyDES": {Certs: "3DES/SHA-1", Key: "3DES/SHA-1", MAC: "SHA-1", Legacy: true},
		"legacyRC2": {Certs: "RC2-40/SHA-1", Key: "3DES/SHA-1", MAC: "SHA-1", Legacy: true},
	}
	files := map[string][]byte{}
	for name, enc := range map[string]*pkcs12.Encoder{"modern": pkcs12.Modern2023, "legacyDES": pkcs12.LegacyDES, "legacyRC2": pkcs12.LegacyRC2} {
		data, err := enc.Encode(leaf.Key, leaf.Cert, nil, "pw")
		if err != nil {
			t.Fatal(err)
		}
		files[name] = data
	}
	if openssl := tooltest.Optional(t, "openssl"); openssl != "" {
		dir := t.TempDir()
		crt, key := leaf.WritePair(t, dir, "alice")
		for name, extra := range map[string][]string{"openssl": nil, "openssl -legacy": {"-legacy"}} {
			out := filepath.Join(dir, strings.ReplaceAll(name, " ", "")+".p12")
			args := append([]string{"pkcs12", "-export", "-in", crt, "-inkey", key, "-passout", "pass:pw", "-out", out}, extra...)
			if b, err := exec.Command(openssl, args...).CombinedOutput(); err != nil {
				t.Fatalf("openssl %v: %v: %s", args, err, b)
			}
			data, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			files[name] = data
		}
		want["openssl"] = want["modern"]
		want["openssl -legacy"] = want["legacyRC2"]
	}
	for name, data := range files {
		got, err := certfile.P12Encryption(data)
		if err != nil || got != want[name] {
			t.Errorf("%s: %+v, %v; want %+v", name, got, err, want[name])
		}
		b, err := certfile.Decode(data, "pw")
		if err != nil || b.P12 == nil || *b.P12 != want[name] {
			t.Errorf("%s: Decode's P12 %+v, %v", name, b, err)
		}
	}
	if s := want["legacyRC2"].String(); !strings.Contains(s, "OpenSSL 3 reads RC2 only with -legacy") {
		t.Errorf("RC2 line %q", s)
	}
	if s := want["modern"].String(); !strings.Contains(s, "macOS Keychain may refuse it") {
		t.Errorf("modern line %q", s)
	}
}
