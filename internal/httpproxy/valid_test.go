package httpproxy

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// The word-at-a-time checks must answer as the byte loops they replaced, for every byte
// at every position of a word and its tail.

func refValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func refToken(s string) bool {
	const extra = "!#$%&'*+-.^_`|~"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(extra, c) >= 0) {
			return false
		}
	}
	return s != ""
}

func refHost(s string) bool {
	const extra = "!$%&'()*+,-.:;=[]_~"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(extra, c) >= 0) {
			return false
		}
	}
	return true
}

func TestValidMatchesByteLoop(t *testing.T) {
	t.Parallel()
	check := func(s string) {
		t.Helper()
		if got, want := ValidValue(s), refValue(s); got != want {
			t.Fatalf("ValidValue(%q) = %v, want %v", s, got, want)
		}
		if got, want := ValidToken(s), refToken(s); got != want {
			t.Fatalf("ValidToken(%q) = %v, want %v", s, got, want)
		}
		if got, want := ValidHost(s), refHost(s); got != want {
			t.Fatalf("ValidHost(%q) = %v, want %v", s, got, want)
		}
	}
	for _, base := range []string{"", "a", "abcdefghij-klmnopqrstuvwxyz0123", "application/octet-stream; q=1"} {
		check(base)
		for pos := range len(base) {
			for c := range 256 {
				b := []byte(base)
				b[pos] = byte(c)
				check(string(b))
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = byte(0x20 + rng.IntN(0x60)) // visible, mostly
			if rng.IntN(20) == 0 {
				b[i] = byte(rng.IntN(256))
			}
		}
		check(string(b))
	}
}
