package certfile_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"tlsgate/internal/certfile"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
)

// blockEnds returns the offset just past each block's END line.
func blockEnds(data []byte) []int {
	var ends []int
	for off := 0; ; {
		i := bytes.Index(data[off:], []byte("-----END "))
		if i < 0 {
			return ends
		}
		j := bytes.Index(data[off+i+5:], []byte("-----"))
		off += i + 5 + j + 5
		ends = append(ends, off)
	}
}

// TestTruncatedPEM cuts a chain, a CA bundle and a key at every byte: a cut on a block
// boundary gives exactly the complete blocks; any other cut is an error naming the
// block, never fewer certificates than the file was meant to hold without a word.
func TestTruncatedPEM(t *testing.T) {
	root := pkitest.New(t, "root", pki.ECDSAP256)
	inter := root.Intermediate("inter")
	leaf := inter.Issue("leaf", pkitest.Server("leaf"))
	other := pkitest.New(t, "other root", pki.ECDSAP256)
	key, err := certfile.EncodeKeyPEM(leaf.Key)
	if err != nil {
		t.Fatal(err)
	}
	parseCerts := func(b []byte) (int, error) { cs, err := certfile.ParseCertificates(b); return len(cs), err }
	for _, tc := range []struct {
		name  string
		data  []byte
		parse func([]byte) (int, error)
	}{
		{"server chain", certfile.EncodePEM(leaf.Cert, inter.Cert), parseCerts},
		{"CA bundle", append(root.PEM(), other.PEM()...), parseCerts},
		{"chain and key in one file", append(certfile.EncodePEM(leaf.Cert, inter.Cert), key...), parseCerts},
		{"key", key, func(b []byte) (int, error) { _, err := certfile.ParsePrivateKey(b); return 1, err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ends := blockEnds(tc.data)
			for k := 1; k < len(tc.data); k++ {
				cut := tc.data[:k]
				n, err := tc.parse(cut)
				complete := -1 // how many blocks a cut on a boundary keeps whole
				for i, e := range ends {
					if len(bytes.TrimRight(cut, "\n")) == e {
						complete = i + 1
					}
				}
				switch {
				case complete > 0 && tc.name == "key":
					if err != nil {
						t.Fatalf("cut at %d (after block %d): %v", k, complete, err)
					}
				case complete > 0:
					// The file holds fewer certificates, but each one whole.
					if err != nil && !errors.Is(err, certfile.ErrNoCertificate) {
						t.Fatalf("cut at %d (after block %d): %v", k, complete, err)
					}
				case err == nil:
					t.Fatalf("cut at %d of %d (mid-block) accepted with %d items", k, len(tc.data), n)
				case k > len("-----BEGIN ") && !strings.Contains(err.Error(), "PEM block "):
					t.Fatalf("cut at %d: error %q does not name the block", k, err)
				}
			}
		})
	}
}

// TestDamagedPEM: encoding/pem's lenient cases are errors that name the block.
func TestDamagedPEM(t *testing.T) {
	root := pkitest.New(t, "root", pki.ECDSAP256)
	other := pkitest.New(t, "other root", pki.ECDSAP256)
	a, b := string(root.PEM()), string(other.PEM())
	half := a[:len(a)/2]
	for _, tc := range []struct {
		name, data string
		want       error
		block      int
	}{
		// pem.Decode skips a block it cannot decode and returns the next one.
		{"cut block followed by a whole one", half + "\n" + b, certfile.ErrDamagedPEM, 1},
		{"second of three cut, third whole", a + b[:len(b)/2] + "\n" + a, certfile.ErrDamagedPEM, 2},
		{"bad base64 in the second", a + strings.Replace(b, "M", "*", 1), certfile.ErrDamagedPEM, 2},
		{"garbage after the last block", a + b + "xx garbage\n", certfile.ErrTrailingPEM, 2},
		{"a BEGIN line cut at the end", a + "-----BEGIN CERT", certfile.ErrDamagedPEM, 2},
		{"a BEGIN line cut shorter", a + "-----BEG", certfile.ErrTrailingPEM, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := certfile.ParseCertificates([]byte(tc.data))
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), fmt.Sprintf("PEM block %d ", tc.block)) {
				t.Fatalf("error %v, want %v at block %d", err, tc.want, tc.block)
			}
		})
	}
	// Text before a block is not garbage: openssl writes it.
	bag := "Bag Attributes\n    friendlyName: x\nsubject=CN=root\n" + a + "subject=CN=other root\n" + b + "\n\n"
	if cs, err := certfile.ParseCertificates([]byte(bag)); err != nil || len(cs) != 2 {
		t.Fatalf("openssl-annotated bundle: %d certs, %v", len(cs), err)
	}
}

// FuzzPEMBlocks: no input panics, and an accepted input has exactly one block per
// BEGIN line and nothing but white space after the last.
func FuzzPEMBlocks(f *testing.F) {
	root := pkitest.New(f, "root", pki.ECDSAP256)
	whole := root.PEM()
	f.Add(whole)
	f.Add(whole[:len(whole)/2])
	f.Add(append(append([]byte("Bag Attributes\n"), whole...), whole...))
	f.Add([]byte("-----BEGIN X-----\n-----END X-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		blocks, err := certfile.PEMBlocks(data)
		if err != nil {
			return
		}
		if n := bytes.Count(data, []byte("-----BEGIN ")); n != len(blocks) {
			t.Fatalf("%d BEGIN lines, %d blocks accepted", n, len(blocks))
		}
	})
}
