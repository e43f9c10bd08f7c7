//go:build openssl && cgo

package cli

import (
	"strings"
	"testing"
)

// TestVersionNamesOpenSSL: the release build says which libcrypto signs RSA and ECDSA P-256 keys.
func TestVersionNamesOpenSSL(t *testing.T) {
	t.Parallel()
	_, out, _ := run("version")
	if !strings.Contains(out, "signing:  OpenSSL 3.") {
		t.Fatalf("version output does not name OpenSSL:\n%s", out)
	}
}
