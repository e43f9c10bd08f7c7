//go:build openssl && cgo

package cli

import (
	"strings"
	"testing"
)

// TestVersionNamesOpenSSL: the release build says which libcrypto signs RSA.
func TestVersionNamesOpenSSL(t *testing.T) {
	t.Parallel()
	_, out, _ := run("version")
	if !strings.Contains(out, "rsa sign: OpenSSL 3.") {
		t.Fatalf("version output does not name OpenSSL:\n%s", out)
	}
}
