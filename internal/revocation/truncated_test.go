package revocation_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
	"tlsgate/internal/revocation"
)

// TestTruncatedCRLFile cuts a file of two CRLs at every byte: a cut that keeps whole
// blocks only loads them; any other cut is an error naming the PEM block, so a CRL is
// never dropped silently (issue 12).
func TestTruncatedCRLFile(t *testing.T) {
	root := pkitest.New(t, "root", pki.ECDSAP256)
	inter := root.Intermediate("inter")
	data := append(root.CRL(time.Hour), inter.CRL(time.Hour)...)
	issuers := inter.Chain
	if cs, err := revocation.ParseFile(data, issuers); err != nil || len(cs) != 2 {
		t.Fatalf("whole file: %d CRLs, %v", len(cs), err)
	}
	first := bytes.Index(data, []byte("-----END X509 CRL-----")) + len("-----END X509 CRL-----")
	for k := 12; k < len(data); k++ {
		cs, err := revocation.ParseFile(data[:k], issuers)
		trimmed := len(bytes.TrimRight(data[:k], "\n"))
		switch {
		case trimmed == first:
			if err != nil || len(cs) != 1 {
				t.Fatalf("cut after the first block: %d CRLs, %v", len(cs), err)
			}
		case trimmed == len(bytes.TrimRight(data, "\n")):
			if err != nil || len(cs) != 2 {
				t.Fatalf("cut after the last END line: %d CRLs, %v", len(cs), err)
			}
		case err == nil:
			t.Fatalf("cut at %d of %d accepted with %d CRLs", k, len(data), len(cs))
		case !strings.Contains(err.Error(), "PEM block "):
			t.Fatalf("cut at %d: %v does not name the block", k, err)
		}
	}
	if _, err := revocation.ParseFile(append(data, "trailing junk"...), issuers); err == nil || !strings.Contains(err.Error(), "PEM block 2 (the last)") {
		t.Fatalf("trailing garbage: %v", err)
	}
}
