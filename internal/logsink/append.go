package logsink

import (
	"math"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// The encoders here write what slog's JSON handler writes for a string, a duration in
// milliseconds and a record's time, at a fraction of the cost: a keep-alive request's
// access line went through them about 18,000 instructions a line with slog's attrs
// (callgrind), nginx spends 7,000 on its own.

// AppendString appends s quoted as slog's JSON handler quotes it: ", \ and control
// bytes escaped, invalid UTF-8 as U+FFFD, U+2028 and U+2029 escaped, HTML characters
// left alone.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	i := cleanPrefix(s)
	if i == len(s) {
		b = append(b, s...)
		return append(b, '"')
	}
	return appendEscaped(b, s, i)
}

const (
	ones   = 0x0101010101010101
	highs  = 0x8080808080808080
	ones4  = 0x01010101
	highs4 = 0x80808080
)

// cleanPrefix is the length of a prefix of s that needs no escaping, found eight bytes
// at a time: the length of s when all of it is printable ASCII without " and \, as
// nearly every field of an access line is.
func cleanPrefix(s string) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if !clean8(load8(s, i)) {
			return i
		}
	}
	if len(s) >= 8 && clean8(load8(s, len(s)-8)) { // the tail, overlapping
		return len(s)
	}
	if len(s) >= 4 && len(s) < 8 && clean4(load4(s, 0)) && clean4(load4(s, len(s)-4)) {
		return len(s) // GET, INFO, request: two overlapping halves
	}
	for i < len(s) && plain[s[i]] { // shorter than 4 bytes, or with a byte to escape
		i++
	}
	return i
}

// plain marks the bytes a JSON string holds as they are: printable ASCII but " and \.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// load8 reads s[i:i+8] little-endian: one load on amd64 and arm64, after one bounds
// check (indexing s itself left a check for each byte).
func load8(s string, i int) uint64 {
	w := s[i : i+8]
	return uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
		uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
}

// load4 reads s[i:i+4] little-endian.
func load4(s string, i int) uint32 {
	w := s[i : i+4]
	return uint32(w[0]) | uint32(w[1])<<8 | uint32(w[2])<<16 | uint32(w[3])<<24
}

// clean4 is clean8 for four bytes.
func clean4(x uint32) bool {
	const quote, backslash = ones4 * '"', ones4 * '\\'
	t := (x - ones4*0x20) | ((x ^ quote) - ones4) | ((x ^ backslash) - ones4)
	return (t&^x|x)&highs4 == 0
}

// clean8 reports whether none of x's bytes is below 0x20, a quote, a backslash or
// 0x80 and above. (x - ones*n) &^ x has a byte's high bit set when that byte is below n
// (n ≤ 0x80), or from a borrow out of a lower byte that is: exact for "is there any".
// Quote and backslash have their high bit clear, so x^q and x share x's high bits.
func clean8(x uint64) bool {
	const quote, backslash = ones * '"', ones * '\\'
	t := (x - ones*0x20) | ((x ^ quote) - ones) | ((x ^ backslash) - ones)
	return (t&^x|x)&highs == 0
}

// appendEscaped appends s, whose first i bytes need no escaping, and its closing quote.
func appendEscaped(b []byte, s string, i int) []byte {
	const hex = "0123456789abcdef"
	start := 0
	for i < len(s) {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// AppendInt appends v in decimal, as strconv.AppendInt(b, v, 10) does; below 10,000
// (statuses, milliseconds, small byte counts) from digit pairs, without strconv's
// general loop (about 100 instructions a number, six numbers a line).
func AppendInt(b []byte, v int64) []byte {
	switch {
	case v < 0 || v >= 10000:
		return strconv.AppendInt(b, v, 10)
	case v < 10:
		return append(b, byte('0'+v))
	case v < 100:
		return append(b, pairs[2*v], pairs[2*v+1])
	case v < 1000:
		lo := v % 100
		return append(b, byte('0'+v/100), pairs[2*lo], pairs[2*lo+1])
	}
	hi, lo := v/100, v%100
	return append(b, pairs[2*hi], pairs[2*hi+1], pairs[2*lo], pairs[2*lo+1])
}

// maxMillisFast bounds the durations AppendMillis prints from integers: below 10^12 µs
// (11.5 days) a float64 of the milliseconds is exact to far less than 0.001, so the
// shortest decimal that reads back as it is the integer milliseconds and up to three
// decimals with the trailing zeros dropped.
const maxMillisFast = 1e12

// AppendMillis appends d in milliseconds with microsecond precision, as slog writes
// slog.Float64(float64(d.Microseconds())/1000): 0.254, 12, 1500.5.
func AppendMillis(b []byte, d time.Duration) []byte {
	us := d.Microseconds()
	if us < 0 || us >= maxMillisFast {
		return appendFloat(b, float64(us)/1000)
	}
	b = AppendInt(b, us/1000)
	frac := us % 1000
	if frac == 0 {
		return b
	}
	digits := [3]byte{byte('0' + frac/100), byte('0' + frac/10%10), byte('0' + frac%10)}
	n := 3
	for digits[n-1] == '0' {
		n--
	}
	b = append(b, '.')
	return append(b, digits[:n]...)
}

// appendFloat formats a finite float as encoding/json does (which slog calls for them).
func appendFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// second is a formatted second of one location: what RFC 3339 puts before and after
// the fraction.
type second struct {
	unix int64
	loc  *time.Location
	date []byte // 2006-01-02T15:04:05
	zone []byte // Z or -07:00
}

// lastSecond caches the second most lines are written in, as the Date header does.
var lastSecond atomic.Pointer[second]

// inLastSecond reports whether t falls in the second appendTime formatted last, whose
// year is in [0, 9999] (appendTime is given no other).
func inLastSecond(t time.Time) bool {
	s := lastSecond.Load()
	return s != nil && s.unix == t.Unix() && s.loc == t.Location()
}

// pairs holds 00 to 99, two digits at a time.
const pairs = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"

// appendTime appends t as t.AppendFormat(b, time.RFC3339Nano) does, for a year in
// [0, 9999]. A location's offset is fixed within a second, so the date, clock and zone
// are formatted once per second and location, and only the fraction per line.
func appendTime(b []byte, t time.Time) []byte {
	unix, loc := t.Unix(), t.Location()
	s := lastSecond.Load()
	if s == nil || s.unix != unix || s.loc != loc {
		s = &second{unix: unix, loc: loc, date: t.AppendFormat(nil, "2006-01-02T15:04:05"), zone: t.AppendFormat(nil, "Z07:00")}
		lastSecond.Store(s)
	}
	b = append(b, s.date...)
	if ns := t.Nanosecond(); ns != 0 {
		frac := [10]byte{'.', byte('0' + ns/1e8)}
		ns %= 1e8
		for i, p := range [4]int{ns / 1e6, ns / 1e4 % 100, ns / 100 % 100, ns % 100} {
			frac[2+2*i], frac[3+2*i] = pairs[2*p], pairs[2*p+1]
		}
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		b = append(b, frac[:n]...)
	}
	return append(b, s.zone...)
}
