package h1parse

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"reflect"
	"testing"
)

// The differential fuzz tests hold the fast path to net/http: for every input, read
// message by message through ReadRequest / ReadResponse and through net/http, the same
// accept/reject (and error text), the same parsed fields, the same body bytes and body
// errors (read whole, or read in part and closed), and the same bytes left on the
// connection afterwards.

// chunks returns its data at most k bytes per Read, so heads arrive in pieces.
type chunks struct {
	b []byte
	k int
}

func (c *chunks) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.k)], c.b)
	c.b = c.b[n:]
	return n, nil
}

// readers builds two identical readers over data, shaped by mode: the buffer size
// and how many bytes each read of the connection returns.
func readers(data []byte, mode byte) (a, b *bufio.Reader) {
	size := 4096
	if mode&1 != 0 {
		size = 64
	}
	k := 1 << (mode >> 4 & 0xf) // 1 B … 32 KiB per read
	return bufio.NewReaderSize(&chunks{data, k}, size), bufio.NewReaderSize(&chunks{data, k}, size)
}

func FuzzRequest(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s), byte(0xf0))
		f.Add([]byte(s), byte(0x33))
	}
	f.Fuzz(diffRequest)
}

// diffRequest reads up to four requests from data both ways and compares them.
func diffRequest(t *testing.T, data []byte, mode byte) {
	a, b := readers(data, mode)
	reuse := reusedHeader(mode)
	var store []byte
	if reuse != nil {
		// One store for the input's heads, as the listener lends one to a run of
		// requests, holding an earlier head's bytes (short in some modes, so that
		// longer heads take their own strings).
		store = bytes.Repeat([]byte("x"), 64+448*int(mode&1))
	}
	for range 4 {
		clear(reuse)
		ra, erra := readRequest(a, reuse, store)
		rb, errb := http.ReadRequest(b)
		if !sameErr(erra, errb) {
			t.Fatalf("errors differ: fast path %v, net/http %v", erra, errb)
		}
		if erra != nil {
			return
		}
		ba, bb := ra.Body, rb.Body
		if (ba == http.NoBody) != (bb == http.NoBody) {
			t.Fatalf("bodies differ: fast path %T, net/http %T", ba, bb)
		}
		ra.Body, rb.Body = nil, nil
		if !reflect.DeepEqual(ra, rb) {
			t.Fatalf("requests differ:\nfast path %#v\nURL %#v\nnet/http  %#v\nURL %#v", ra, ra.URL, rb, rb.URL)
		}
		sameBody(t, ba, bb, mode)
	}
	sameRest(t, a, b)
}

func FuzzResponse(f *testing.F) {
	for _, s := range responseSeeds {
		for _, mode := range []byte{0xf0, 0x32, 0xf4, 0xf8} {
			f.Add([]byte(s), mode)
		}
	}
	f.Fuzz(diffResponse)
}

// diffResponse reads up to three responses from data both ways and compares them.
func diffResponse(t *testing.T, data []byte, mode byte) {
	var req *http.Request
	switch mode >> 2 & 3 {
	case 1:
		req = &http.Request{Method: http.MethodHead}
	case 2:
		req = &http.Request{Method: http.MethodGet}
	case 3:
		req = &http.Request{Method: http.MethodPost}
	}
	a, b := readers(data, mode)
	reuse := reusedHeader(mode)
	var blk *ResponseBlock
	var head []byte
	if reuse != nil {
		// One block for the input's responses, as the proxy keeps one per connection,
		// holding an earlier response's remains, and one buffer for their heads' bytes
		// (short in some modes, so that longer heads take their own strings).
		blk = &ResponseBlock{strs: [inlineValues]string{"stale", "stale"}}
		blk.resp.Trailer = http.Header{"Stale": {"trailer"}}
		head = bytes.Repeat([]byte("x"), 64+448*int(mode&1))
	}
	for range 3 {
		clear(reuse)
		ra, erra := ReadResponseBlock(a, req, reuse, blk, head)
		rb, errb := http.ReadResponse(b, req)
		if !sameErr(erra, errb) {
			t.Fatalf("errors differ: fast path %v, net/http %v", erra, errb)
		}
		if erra != nil {
			return
		}
		ba, bb := ra.Body, rb.Body
		if (ba == http.NoBody) != (bb == http.NoBody) {
			t.Fatalf("bodies differ: fast path %T, net/http %T", ba, bb)
		}
		ra.Body, rb.Body = nil, nil
		if !reflect.DeepEqual(ra, rb) {
			t.Fatalf("responses differ:\nfast path %#v\nnet/http  %#v", ra, rb)
		}
		sameBody(t, ba, bb, mode)
	}
	sameRest(t, a, b)
}

// reusedHeader is, in modes with bit 1 set, one header map for all the messages of an
// input, cleared before each (as the listener and the proxy reuse theirs), and then a
// response block too; nil (a map per message) otherwise.
func reusedHeader(mode byte) http.Header {
	if mode&2 == 0 {
		return nil
	}
	return http.Header{"Stale": {"from an earlier message"}}
}

func sameErr(a, b error) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Error() == b.Error()
}

// sameBody reads both bodies whole, or (mode bit 1) a few bytes and then closes them,
// and compares what each gives.
func sameBody(t *testing.T, a, b io.ReadCloser, mode byte) {
	t.Helper()
	if mode&2 == 0 {
		da, erra := io.ReadAll(a)
		db, errb := io.ReadAll(b)
		if !bytes.Equal(da, db) || !sameErr(erra, errb) {
			t.Fatalf("bodies read differ: fast path %q, %v; net/http %q, %v", da, erra, db, errb)
		}
	} else {
		var pa, pb [3]byte
		na, erra := a.Read(pa[:])
		nb, errb := b.Read(pb[:])
		if na != nb || pa != pb || !sameErr(erra, errb) {
			t.Fatalf("first body reads differ: fast path %q, %v; net/http %q, %v", pa[:na], erra, pb[:nb], errb)
		}
	}
	erra, errb := a.Close(), b.Close()
	if !sameErr(erra, errb) {
		t.Fatalf("body closes differ: fast path %v, net/http %v", erra, errb)
	}
	na, erra := a.Read(make([]byte, 1))
	nb, errb := b.Read(make([]byte, 1))
	if na != nb || !sameErr(erra, errb) {
		t.Fatalf("reads after close differ: fast path %d, %v; net/http %d, %v", na, erra, nb, errb)
	}
}

// sameRest compares what is left on both connections.
func sameRest(t *testing.T, a, b *bufio.Reader) {
	t.Helper()
	da, erra := io.ReadAll(a)
	db, errb := io.ReadAll(b)
	if !bytes.Equal(da, db) || !errors.Is(erra, errb) {
		t.Fatalf("rest differs: fast path %q, %v; net/http %q, %v", da, erra, db, errb)
	}
}
