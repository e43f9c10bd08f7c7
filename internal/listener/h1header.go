package listener

import (
	"bytes"
	"cmp"
	"net/http"
	"sync/atomic"
)

// HeaderLimits bound one request's header block, as nginx's large_client_header_buffers
// (4 × 8k) does: a client cannot make tlsgate hold or forward more than this.
type HeaderLimits struct {
	// Bytes is the whole block, request line included (431 past it).
	Bytes int
	// Fields is the number of header fields (431 past it).
	Fields int
	// FieldBytes is one field line, or the request line (431, or 414 for the request
	// line, past it).
	FieldBytes int
}

// DefaultHeaderLimits are nginx's defaults: 64 KiB of header, 100 fields of up to 8 KiB.
var DefaultHeaderLimits = HeaderLimits{Bytes: 64 << 10, Fields: 100, FieldBytes: 8 << 10}

// HeaderBudget is the process-wide number of header bytes being read and not yet parsed
// (HTTP/1 header blocks, HTTP/2 header blocks without END_HEADERS). Per-connection
// limits alone let N slow connections hold N × 64 KiB; past the budget a new header read
// is refused and its connection closed, so a flood of unfinished headers cannot grow
// memory without bound. The zero value (or nil) has no limit.
type HeaderBudget struct {
	limit atomic.Int64
	used  atomic.Int64
}

// DefaultHeaderBudget is 32 MiB: 512 header blocks at the 64 KiB limit at once, or
// some 30,000 typical (1 KiB) ones.
const DefaultHeaderBudget = 32 << 20

// NewHeaderBudget returns a budget of limit bytes (0: none).
func NewHeaderBudget(limit int64) *HeaderBudget {
	b := &HeaderBudget{}
	b.SetLimit(limit)
	return b
}

// SetLimit changes the budget (a reload); reads in flight keep what they took.
func (b *HeaderBudget) SetLimit(limit int64) { b.limit.Store(limit) }

// Used is the number of header bytes taken now.
func (b *HeaderBudget) Used() int64 { return b.used.Load() }

// take reserves n bytes; false (nothing reserved) past the budget.
func (b *HeaderBudget) take(n int64) bool {
	if b == nil {
		return true
	}
	limit := b.limit.Load()
	if b.used.Add(n) > limit && limit > 0 {
		b.used.Add(-n)
		return false
	}
	return true
}

func (b *HeaderBudget) give(n int64) {
	if b != nil && n != 0 {
		b.used.Add(-n)
	}
}

// headerError refuses a request for its header block; the connection is closed after
// the answer.
type headerError struct {
	status int
	msg    string
}

func (e *headerError) Error() string { return e.msg }

var (
	errHeaderTooLarge  = &headerError{http.StatusRequestHeaderFieldsTooLarge, "request header block over max_header_bytes"}
	errTooManyFields   = &headerError{http.StatusRequestHeaderFieldsTooLarge, "more header fields than max_header_fields"}
	errFieldTooLarge   = &headerError{http.StatusRequestHeaderFieldsTooLarge, "a header field over max_header_field_bytes"}
	errURITooLong      = &headerError{http.StatusRequestURITooLong, "request line over max_header_field_bytes"}
	errHeaderBudget    = &headerError{http.StatusServiceUnavailable, "the process's header memory budget is spent"}
	errAmbiguousLength = &headerError{http.StatusBadRequest, "both Content-Length and Transfer-Encoding"}
	errTE10            = &headerError{http.StatusBadRequest, "Transfer-Encoding on an HTTP/1.0 request"}
	errObsFold         = &headerError{http.StatusBadRequest, "obsolete line folding in the header"}
	errBareLF          = &headerError{http.StatusBadRequest, "a header line ended by LF without CR"}
)

// headerScan watches the raw bytes of one request's header block as the connection
// reads them, before net/http parses them. net/http resolves ambiguous framing silently
// (Content-Length is dropped when Transfer-Encoding is present, Transfer-Encoding is
// ignored on HTTP/1.0, folded lines are joined, a bare LF ends a line): a front that
// frames by Content-Length, or splits lines only at CRLF, would then see other request
// boundaries than the backend behind tlsgate (request smuggling, RFC 9112 §6.1, §6.3).
// So such a block is refused here, with the limits, and nothing is forwarded.
type headerScan struct {
	lim      HeaderLimits
	budget   *HeaderBudget
	reserved int64 // taken from budget, given back by release

	n       int // bytes of the block so far
	lines   int // lines ended so far (the request line is the first)
	lineLen int // bytes of the current line so far, without its LF
	head    [len("transfer-encoding:")]byte
	cl, te  bool // a Content-Length, a Transfer-Encoding field was seen
	lastCR  bool // the current line's last byte so far is CR
	done    bool // the empty line ending the block was read
	err     error
}

// reset starts a block; a zero limit is its default.
func (s *headerScan) reset(lim HeaderLimits, budget *HeaderBudget) {
	lim.Bytes = cmp.Or(lim.Bytes, DefaultHeaderLimits.Bytes)
	lim.Fields = cmp.Or(lim.Fields, DefaultHeaderLimits.Fields)
	lim.FieldBytes = cmp.Or(lim.FieldBytes, DefaultHeaderLimits.FieldBytes)
	*s = headerScan{lim: lim, budget: budget}
}

// release gives the bytes taken from the budget back, when the block is parsed or the
// read failed.
func (s *headerScan) release() {
	s.budget.give(s.reserved)
	s.reserved = 0
}

// feed scans the next bytes read; bytes after the end of the block are ignored. The
// error, once there is one, stays.
func (s *headerScan) feed(b []byte) error {
	if s.done || s.err != nil {
		return s.err
	}
	start := s.n
	for len(b) > 0 && !s.done && s.err == nil {
		seg, rest, ended := bytes.Cut(b, []byte{'\n'})
		s.addToLine(seg)
		s.n += len(seg)
		b = rest
		if ended {
			s.n++
			s.endLine()
		}
	}
	if s.err == nil && s.n > s.lim.Bytes {
		s.err = errHeaderTooLarge
	}
	if s.err == nil {
		if n := int64(s.n - start); s.budget.take(n) {
			s.reserved += n
		} else {
			s.err = errHeaderBudget
		}
	}
	return s.err
}

func (s *headerScan) addToLine(seg []byte) {
	if len(seg) == 0 {
		return
	}
	if s.lineLen < len(s.head) {
		copy(s.head[s.lineLen:], seg)
	}
	s.lineLen += len(seg)
	s.lastCR = seg[len(seg)-1] == '\r'
	if s.lineLen > s.lim.FieldBytes+1 { // +1: the CR
		s.err = errFieldTooLarge
		if s.lines == 0 {
			s.err = errURITooLong
		}
	}
}

// endLine checks the line just ended by LF.
func (s *headerScan) endLine() {
	length, first := s.lineLen-1, s.lines == 0
	head := s.head[:min(s.lineLen, len(s.head))]
	cr := s.lastCR && s.lineLen > 0
	s.lines++
	s.lineLen, s.lastCR = 0, false
	switch {
	case !cr:
		s.err = errBareLF
	case length == 0:
		s.done = true // the end of the block (or an empty request line, which net/http refuses)
	case first:
	case head[0] == ' ' || head[0] == '\t':
		s.err = errObsFold
	case s.lines-1 > s.lim.Fields:
		s.err = errTooManyFields
	default:
		s.cl = s.cl || hasPrefixFold(head, "content-length:")
		s.te = s.te || hasPrefixFold(head, "transfer-encoding:")
		if s.cl && s.te {
			s.err = errAmbiguousLength
		}
	}
}

// hasPrefixFold reports whether b starts with the lower-case ASCII prefix, in any case.
func hasPrefixFold(b []byte, prefix string) bool {
	if len(b) < len(prefix) {
		return false
	}
	for i := range len(prefix) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}
