package listener

import (
	"strings"
	"testing"
)

// scanAll feeds block to a fresh scan in pieces of size n.
func scanAll(block string, n int, budget *HeaderBudget) (*headerScan, error) {
	s := &headerScan{}
	s.reset(HeaderLimits{}, budget)
	var err error
	for len(block) > 0 && err == nil {
		k := min(n, len(block))
		err = s.feed([]byte(block[:k]))
		block = block[k:]
	}
	return s, err
}

func TestHeaderScan(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, block string
		want        error
	}{
		{"plain", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", nil},
		{"bytes after the block are not scanned", "GET / HTTP/1.1\r\nHost: a\r\n\r\nTransfer-Encoding: x\nContent-Length: 1\n", nil},
		{"CL and TE", "POST / HTTP/1.1\r\nCONTENT-LENGTH: 1\r\ntransfer-encoding: chunked\r\n\r\n", errAmbiguousLength},
		{"fold", "GET / HTTP/1.1\r\nA: b\r\n\tc\r\n\r\n", errObsFold},
		{"bare LF", "GET / HTTP/1.1\nHost: a\r\n\r\n", errBareLF},
		{"long field", "GET / HTTP/1.1\r\nA: " + strings.Repeat("x", 9000) + "\r\n\r\n", errFieldTooLarge},
		{"long request line", "GET /" + strings.Repeat("x", 9000) + " HTTP/1.1\r\n\r\n", errURITooLong},
		{"many fields", "GET / HTTP/1.1\r\n" + strings.Repeat("A: b\r\n", 101) + "\r\n", errTooManyFields},
		{"large block", "GET / HTTP/1.1\r\n" + strings.Repeat("A: "+strings.Repeat("x", 8000)+"\r\n", 9), errHeaderTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, n := range []int{1, 7, 1 << 20} {
				if _, err := scanAll(tc.block, n, nil); err != tc.want {
					t.Fatalf("pieces of %d: %v, want %v", n, err, tc.want)
				}
			}
		})
	}
}

// TestHeaderBudget: scans take from the budget until it is spent and give back on
// release.
func TestHeaderBudget(t *testing.T) {
	t.Parallel()
	b := NewHeaderBudget(100)
	s1, err := scanAll("GET / HTTP/1.1\r\nA: "+strings.Repeat("x", 60), 10, b)
	if err != nil || b.Used() != s1.reserved || b.Used() == 0 {
		t.Fatalf("first scan: %v, used %d", err, b.Used())
	}
	s2, err := scanAll("GET / HTTP/1.1\r\nA: "+strings.Repeat("x", 60), 10, b)
	if err != errHeaderBudget {
		t.Fatalf("second scan: %v, want the budget refusal", err)
	}
	s1.release()
	s2.release()
	if b.Used() != 0 {
		t.Fatalf("used %d after both released, want 0", b.Used())
	}
}

// FuzzHeaderScan: the verdict does not depend on how the bytes are split into reads.
func FuzzHeaderScan(f *testing.F) {
	f.Add("POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 3)
	f.Add("GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", 1)
	f.Fuzz(func(t *testing.T, block string, n int) {
		if n <= 0 {
			n = 1
		}
		_, whole := scanAll(block, len(block)+1, nil)
		if _, split := scanAll(block, n, nil); split != whole {
			t.Fatalf("in pieces of %d: %v; whole: %v", n, split, whole)
		}
	})
}
