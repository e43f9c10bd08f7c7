package httpproxy

import "strings"

// The checks below run over every header name and value a request or response carries
// to the next hop (about 150 bytes of a small request's and response's heads): a byte
// at a time with a branch each they were 2.2 k instructions per proxied request. Tokens
// are checked four bytes per step against a 256-entry table (no range test, one branch
// per four bytes), values eight bytes per step as one 64-bit word.

// ValidToken reports whether s is a non-empty RFC 9110 token (methods, field names).
func ValidToken(s string) bool { return s != "" && allIn(s, &tokenChars) }

// ValidHost is net/http's Host check: the bytes a host, port or IPv6 literal can have.
func ValidHost(s string) bool { return allIn(s, &hostChars) }

// allIn reports whether every byte of s is marked 1 in table. A string of four bytes or
// more is read in steps of four, the last step overlapping the one before.
func allIn(s string, table *[256]uint8) bool {
	if len(s) < 4 {
		ok := uint8(1)
		for i := 0; i < len(s); i++ {
			ok &= table[s[i]]
		}
		return ok != 0
	}
	ok := table[s[len(s)-4]] & table[s[len(s)-3]] & table[s[len(s)-2]] & table[s[len(s)-1]]
	for ; len(s) >= 4; s = s[4:] {
		ok &= table[s[0]] & table[s[1]] & table[s[2]] & table[s[3]]
	}
	return ok != 0
}

var hostChars = func() (t [256]uint8) {
	for c := range 128 {
		b := byte(c)
		if 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || strings.IndexByte("!$%&'()*+,-.:;=[]_~", b) >= 0 {
			t[c] = 1
		}
	}
	return t
}()

var tokenChars = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = 1
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-32] = 1, 1
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = 1
	}
	return t
}()

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// ValidValue reports whether s can be a field value: no control bytes but tab, so no
// CR, LF or NUL to split a header with. A value of eight bytes or more is read a word at
// a time, the last word overlapping the one before; a word with a byte below 0x20 or a
// DEL (which also marks the bytes above it) sends the value to the byte loop, which
// allows tabs.
func ValidValue(s string) bool {
	if n := len(s); n >= 8 {
		bad := suspect(word(s, n-8))
		for i := 0; i+8 <= n; i += 8 {
			bad |= suspect(word(s, i))
		}
		if bad == 0 {
			return true
		}
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// suspect is non-zero when a byte of x is below 0x20 or is 0x7f.
func suspect(x uint64) uint64 {
	del := x ^ 0x7f*ones
	return ((x-0x20*ones)&^x | (del-ones)&^del) & highs
}

// word is the eight bytes of s from i, little-endian (one load).
func word(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}
