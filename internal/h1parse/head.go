package h1parse

import (
	"bufio"
	"bytes"
	"math/bits"
	"net/http"
	"unsafe"
)

// inlineValues is how many values share the allocation of the message struct.
const inlineValues = 8

// maxFields bounds the header lines of a message the fast path takes; a head with more
// goes to net/http.
const maxFields = 48

// buffered is the bytes br has buffered, and a string view of them, which the fast path
// parses in place before it copies the head it took (nothing reads br meanwhile).
func buffered(br *bufio.Reader) ([]byte, string) {
	b, _ := br.Peek(br.Buffered())
	return b, unsafe.String(unsafe.SliceData(b), len(b))
}

// fillFirstLine makes the one read of the connection that net/http would make first
// when br holds the start of a message but not one whole line: its ReadLine has to read
// on before it can parse anything (so no reply it could give is delayed). This matters
// because the listener hands over a request's first byte alone (it waited for it with
// a one-byte read). An error is left for net/http, which meets it again on its own
// read: a connection's errors repeat (EOF, a deadline passed, a TLS alert; the
// listener's header scan keeps its first error).
func fillFirstLine(br *bufio.Reader) {
	n := br.Buffered()
	if n == 0 || n >= br.Size() {
		return
	}
	if b, _ := br.Peek(n); bytes.IndexByte(b, '\n') < 0 {
		_, _ = br.Peek(n + 1)
	}
}

// maxHead bounds the head the fast path takes, so that a field's offsets fit 16 bits.
const maxHead = 1<<16 - 1

// field is one header line of a head: where its key and its trimmed value lie in the
// head (offsets and lengths), so that the fast path can parse the head where br buffers
// it and take its strings from the copy it makes after.
type field struct {
	ko, kn, vo, vn uint16
}

// fields is what the fast path learned from a head's header lines.
type fields struct {
	n    int
	list [maxFields]field
	// fold has bit i set when the key of field i is not in canonical form: copyHead
	// rewrites it in the copy of the head.
	fold uint64
	// lens has bit n%64 set when a key of n bytes was read; same is set when two keys
	// have one length (so may be one key, repeated).
	lens   uint64
	same   bool
	host   int // index+1 of the Host line; 0 when none
	length int // index+1 of the Content-Length line; 0 when none
	conn   int // index+1 of the Connection line; 0 when none
	// longest is the length of the longest header line, without its CRLF.
	longest int
}

// scanFields reads the header lines of s from i (just after the first line's CRLF) to the
// final blank line and returns the length of the head (up to and including that CRLF),
// or false for a head that is not all in s (or longer than maxHead) or anything net/http
// might read differently or that the fast path leaves to it.
func scanFields(s string, i int, f *fields) (int, bool) {
	s = s[:min(len(s), maxHead)]
	for {
		if i+1 >= len(s) {
			return 0, false // the head is not all there
		}
		if s[i] == '\r' { // the final CRLF
			return i + 2, s[i+1] == '\n'
		}
		if f.n == maxFields {
			return 0, false
		}
		fl := &f.list[f.n]
		// The name: up to the first colon, found eight bytes at a time. A common name is
		// recognised whole by its length and bytes; another is checked one table lookup a
		// byte: letters, digits and '-' up to the colon; canonical (textproto's form) when
		// no lower-case letter starts it or follows a '-' and no upper-case letter stands
		// elsewhere. up is 1 where a letter must be upper case, so 2-up picks the bit of
		// the letter case that is wrong there.
		j := colon(s, i)
		if j == len(s) {
			return 0, false
		}
		kind := knownName(s[i:j])
		if kind == unknown {
			bad, up := uint8(0), uint8(1)
			for k := i; k < j; k++ {
				c := nameClass[s[k]]
				if c == 0 {
					return 0, false // a space before the colon, another tchar, a control
				}
				bad |= c & (2 - up)
				up = c >> 3
			}
			if j == i {
				return 0, false
			}
			if bad != 0 {
				f.fold |= 1 << f.n
			}
			kind = kindOf(s[i:j])
		}
		ke := j
		j++
		for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
			j++
		}
		vs := j
		// The value, eight bytes at a time: the lowest byte the word test flags is the first
		// control byte (the CR ending the value, a tab), DEL or obs-text; a tab is taken.
		for {
			if j+8 > len(s) {
				for ; j < len(s) && s[j] != '\r'; j++ {
					if c := s[j]; (c < 0x20 && c != '\t') || c > 0x7e {
						return 0, false // bare LF, controls, obs-text
					}
				}
				break
			}
			x := word(s, j)
			m := ((x-0x20*ones)&^x | (x&^highs + ones) | x) & highs
			if m == 0 {
				j += 8
				continue
			}
			j += bits.TrailingZeros64(m) >> 3
			if s[j] != '\t' {
				break
			}
			j++
		}
		if j+1 >= len(s) || s[j] != '\r' || s[j+1] != '\n' {
			return 0, false // bare LF, bare CR, controls, obs-text; or not all there
		}
		f.longest = max(f.longest, j-i)
		ve := j
		for ve > vs && (s[ve-1] == ' ' || s[ve-1] == '\t') {
			ve--
		}
		*fl = field{uint16(i), uint16(ke - i), uint16(vs), uint16(ve - vs)}
		if bit := uint64(1) << ((ke - i) & 63); f.lens&bit == 0 {
			f.lens |= bit
		} else {
			f.same = true
		}
		i = j + 2
		if i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			return 0, false // obs-fold
		}
		f.n++
		if !f.note(kind) {
			return 0, false
		}
	}
}

// colon is the index of the first ':' in s from i, or len(s) when there is none.
func colon(s string, i int) int {
	for ; i+8 <= len(s); i += 8 {
		x := word(s, i) ^ 0x3a*ones
		if m := (x - ones) &^ x & highs; m != 0 { // the lowest set bit marks the first zero byte
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for i < len(s) && s[i] != ':' {
		i++
	}
	return i
}

// The word test of scanFields: a high bit of (x-0x20*ones)&^x is set if some byte of x
// under 0x80 is below 0x20 (exact for the lowest such byte), one of (x&^highs+ones)|x
// for each byte of 0x7f or more.
const ones, highs = 0x0101010101010101, 0x8080808080808080

// word is the eight bytes of s from i, little-endian (one load).
func word(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// The kinds of field name the fast path tells apart.
const (
	unknown = iota // not one of knownName's
	other          // taken as it is
	hostField
	lengthField
	connField
	declined // left to net/http
)

// knownName is the kind of a common canonical name (a switch on the length, then
// comparisons with constants); unknown for any other name, which scanFields then checks
// byte by byte. Each is a token in canonical form that kindOf classes the same.
func knownName(k string) int {
	switch len(k) {
	case 4:
		switch k {
		case "Host":
			return hostField
		case "Date":
			return other
		}
	case 6:
		switch k {
		case "Accept":
			return other
		case "Cookie":
			return other
		case "Origin":
			return other
		case "Server":
			return other
		}
	case 7:
		if k == "Referer" {
			return other
		}
	case 10:
		switch k {
		case "User-Agent":
			return other
		case "Connection":
			return connField
		}
	case 12:
		switch k {
		case "Content-Type":
			return other
		case "X-Request-Id":
			return other
		}
	case 13:
		switch k {
		case "Cache-Control":
			return other
		case "Authorization":
			return other
		}
	case 14:
		if k == "Content-Length" {
			return lengthField
		}
	case 15:
		switch k {
		case "Accept-Encoding":
			return other
		case "Accept-Language":
			return other
		case "X-Forwarded-For":
			return other
		}
	}
	return unknown
}

// nameClass classes the bytes of a field name the fast path takes: 1 a lower-case
// letter, 2 an upper-case one, 4 a digit, 8 '-'; 0 any other byte.
var nameClass = func() (t [256]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-32] = 1, 2
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = 4
	}
	t['-'] = 8
	return t
}()

// kindOf classes a field name of letters, digits and '-' by its canonical form, which
// is one of a name in lower case (so by length, then a case-insensitive comparison).
func kindOf(key string) int {
	var name string
	kind := declined // Framing, smuggling and the special cases net/http rewrites: its business.
	switch len(key) {
	case 2:
		name = "te"
	case 4:
		name, kind = "host", hostField
	case 6:
		name = "expect"
		if !equalFold(key, name) {
			name = "pragma"
		}
	case 7:
		name = "trailer"
		if !equalFold(key, name) {
			name = "upgrade"
		}
	case 10:
		name, kind = "connection", connField
	case 14:
		name, kind = "content-length", lengthField
	case 17:
		name = "transfer-encoding"
	default:
		return other
	}
	if !equalFold(key, name) {
		return other
	}
	return kind
}

// note records the field just read (f.n counts it), of the given kind, when the fast
// path interprets it, and declines those it leaves to net/http.
func (f *fields) note(kind int) bool {
	switch kind {
	case hostField:
		if f.host != 0 {
			return false
		}
		f.host = f.n
	case lengthField:
		if f.length != 0 {
			return false
		}
		f.length = f.n
	case connField:
		if f.conn != 0 {
			return false
		}
		f.conn = f.n
	case declined:
		return false
	}
	return true
}

// key and value are field i's key and value in s, the copy of the head (after canon).
func (f *fields) key(s string, i int) string {
	fl := &f.list[i]
	return s[fl.ko : fl.ko+fl.kn]
}

func (f *fields) value(s string, i int) string {
	fl := &f.list[i]
	return s[fl.vo : fl.vo+fl.vn]
}

// copyHead copies the head b (whose fields f has read) into store when it fits and lent
// is true, into storage of its own otherwise, and returns it as a string, with every
// key rewritten there in textproto's canonical form (so that each key is a substring of
// the head too).
func (f *fields) copyHead(b, store []byte, lent bool) string {
	var buf []byte
	switch {
	case lent:
		buf = store[:copy(store, b)]
	case f.fold == 0:
		return string(b)
	default:
		buf = append([]byte(nil), b...)
	}
	for m := f.fold; m != 0; m &= m - 1 {
		fl := &f.list[bits.TrailingZeros64(m)]
		canonical(buf[fl.ko : fl.ko+fl.kn])
	}
	return unsafe.String(unsafe.SliceData(buf), len(buf))
}

// canonical rewrites a key of letters, digits and '-' in textproto's canonical form.
func canonical(b []byte) {
	upper := true
	for i, c := range b {
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
		upper = c == '-'
	}
}

// header builds the header map as textproto does: one values slice cut into
// single-element slices (capacity 1, so an append copies), repeated keys appended.
// Without host, the Host line is left out (http.ReadRequest deletes it).
// strs is storage for the values, from the caller's allocation when it is large enough;
// h, when not nil, is an empty map to fill (the caller's, reused across messages). When
// no two keys have one length, no key repeats and none is looked up first.
func (f *fields) header(s string, host bool, strs []string, h http.Header) http.Header {
	if h == nil {
		h = make(http.Header, f.n)
	}
	if len(strs) < f.n {
		strs = make([]string, f.n)
	}
	for i := range f.n {
		if !host && i == f.host-1 {
			continue
		}
		k, v := f.key(s, i), f.value(s, i)
		if !f.same {
			vv := strs[:1:1]
			strs = strs[1:]
			vv[0] = v
			h[k] = vv
			continue
		}
		vv := h[k]
		if vv == nil {
			vv, strs = strs[:1:1], strs[1:]
			vv[0] = v
			h[k] = vv
		} else {
			h[k] = append(vv, v)
		}
	}
	return h
}

// contentLength is the single Content-Length's value: -1 when there is none, false
// when it is not plain digits without a leading zero (those go to net/http).
func (f *fields) contentLength(s string) (int64, bool) {
	if f.length == 0 {
		return -1, true
	}
	v := f.value(s, f.length-1)
	if v == "" || len(v) > 15 || (v[0] == '0' && len(v) > 1) {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// connection is the single Connection value as one of the two tokens the fast path
// interprets: "close", "keep-alive", or "" when there is no Connection line. Anything
// else (a list, another token) is declined.
func (f *fields) connection(s string) (string, bool) {
	if f.conn == 0 {
		return "", true
	}
	switch v := f.value(s, f.conn-1); {
	case equalFold(v, "close"):
		return "close", true
	case equalFold(v, "keep-alive"):
		return "keep-alive", true
	}
	return "", false
}

// equalFold is ASCII case-insensitive equality (b is lower case).
func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != b[i] {
			return false
		}
	}
	return true
}

// closes reports net/http's shouldClose for a message with the given minor version
// (major is 1) and Connection token.
func closes(minor int, conn string) bool {
	if minor == 0 {
		return conn != "keep-alive"
	}
	return conn == "close"
}
