package h1parse

import (
	"bufio"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

// The fast path must take the common shapes (or the fuzz tests would prove nothing)
// and leave the reader untouched for everything it declines.

func TestFastRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		fast bool
	}{
		{"get", "GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: x\r\n\r\n", true},
		{"http/1.0", "GET / HTTP/1.0\r\nHost: a\r\n\r\n", true},
		{"post with body", "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", true},
		{"lower-case keys", "GET / HTTP/1.1\r\nhost: a\r\naccept: */*\r\n\r\n", true},
		{"connection close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", true},
		{"head not buffered whole", "GET / HTTP/1.1\r\nHost: a\r\n", false},
		{"bare LF", "GET / HTTP/1.1\nHost: a\n\n", false},
		{"bare LF in a value", "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", false},
		{"bare CR", "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", false},
		{"NUL", "GET / HTTP/1.1\r\nHost: a\x00\r\n\r\n", false},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n", false},
		{"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", false},
		{"missing host", "GET / HTTP/1.1\r\n\r\n", false},
		{"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", false},
		{"transfer-encoding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false},
		{"te and cl", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n", false},
		{"duplicate cl", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", false},
		{"cl with sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\nx", false},
		{"cl leading zero", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 01\r\n\r\nx", false},
		{"cl list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\nx", false},
		{"connection list", "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n", false},
		{"expect", "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx", false},
		{"absolute form", "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", false},
		{"authority form", "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", false},
		{"asterisk", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", false},
		{"percent", "GET /a%2Fb HTTP/1.1\r\nHost: a\r\n\r\n", false},
		{"http/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", false},
		{"other method", "PROPFIND / HTTP/1.1\r\nHost: a\r\n\r\n", false},
		{"obs-text", "GET / HTTP/1.1\r\nHost: a\r\nX: \xe9\r\n\r\n", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			br := bufio.NewReader(strings.NewReader(tc.in))
			_, _ = br.Peek(1)
			n := br.Buffered()
			r := fastRequest(br, nil, Limits{}, nil)
			if (r != nil) != tc.fast {
				t.Fatalf("fast path took it: %v, want %v", r != nil, tc.fast)
			}
			if r == nil && br.Buffered() != n {
				t.Fatalf("a declined request consumed %d bytes", n-br.Buffered())
			}
		})
	}
}

func TestFastResponse(t *testing.T) {
	t.Parallel()
	head := &http.Request{Method: http.MethodHead}
	tests := []struct {
		name string
		in   string
		req  *http.Request
		fast bool
	}{
		{"200", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", nil, true},
		{"404 no reason", "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n", nil, true},
		{"204", "HTTP/1.1 204 No Content\r\n\r\n", nil, true},
		{"head", "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", head, true},
		{"until close", "HTTP/1.1 200 OK\r\n\r\nbody", nil, false},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", nil, false},
		{"interim", "HTTP/1.1 100 Continue\r\n\r\n", nil, false},
		{"switch", "HTTP/1.1 101 Switching Protocols\r\n\r\n", nil, false},
		{"two spaces", "HTTP/1.1  200 OK\r\nContent-Length: 0\r\n\r\n", nil, false},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			br := bufio.NewReader(strings.NewReader(tc.in))
			_, _ = br.Peek(1)
			n := br.Buffered()
			r := fastResponse(br, tc.req, nil, nil, nil)
			if (r != nil) != tc.fast {
				t.Fatalf("fast path took it: %v, want %v", r != nil, tc.fast)
			}
			if r == nil && br.Buffered() != n {
				t.Fatalf("a declined response consumed %d bytes", n-br.Buffered())
			}
		})
	}
}

// oneThenRest returns its first byte alone, as the listener hands over a request's
// first byte, then the rest.
type oneThenRest struct {
	b    []byte
	read int
}

func (o *oneThenRest) Read(p []byte) (int, error) {
	if len(o.b) == 0 {
		return 0, io.EOF
	}
	n := 1
	if o.read > 0 {
		n = len(o.b)
	}
	o.read++
	n = copy(p, o.b[:n])
	o.b = o.b[n:]
	return n, nil
}

func TestFirstByteAlone(t *testing.T) {
	t.Parallel()
	br := bufio.NewReader(&oneThenRest{b: []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")})
	_, _ = br.Peek(1)
	if br.Buffered() != 1 {
		t.Fatalf("buffered %d, want the first byte alone", br.Buffered())
	}
	fillFirstLine(br)
	if r := fastRequest(br, nil, Limits{}, nil); r == nil {
		t.Fatal("the fast path declined a request whose first byte came alone")
	}
}

// TestNoExtraWait: a malformed line is refused at once, as net/http refuses it, without
// a read net/http would not make (the client sends nothing more and waits).
func TestNoExtraWait(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"BAD\r\n", "G", "HTTP/1.1 999\r\n"} {
		pr, pw := io.Pipe()
		go func() { _, _ = pw.Write([]byte(in)) }() // then keeps the pipe open
		done := make(chan error, 2)
		go func() {
			_, err := ReadRequest(bufio.NewReader(pr))
			done <- err
		}()
		if in == "G" {
			// Not a whole line: net/http reads on, and so do we; end it.
			_ = pw.CloseWithError(errors.New("client gone"))
		}
		if err := <-done; err == nil {
			t.Fatalf("%q: no error", in)
		}
		_ = pw.Close()
	}
}

// TestInto: the fast path fills the caller's map (and only a message it takes); a
// message net/http reads leaves it untouched.
func TestInto(t *testing.T) {
	t.Parallel()
	same := func(a, b http.Header) bool {
		return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
	}
	h := http.Header{}
	r, err := ReadRequestInto(bufio.NewReader(strings.NewReader("GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\r\n")), h)
	if err != nil || !same(r.Header, h) || len(h) != 1 || h.Get("X-A") != "1" {
		t.Fatalf("fast request: err %v, header %v (the caller's map: %v)", err, r.Header, same(r.Header, h))
	}
	clear(h)
	r, err = ReadRequestInto(bufio.NewReader(strings.NewReader("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")), h)
	if err != nil || same(r.Header, h) || len(h) != 0 {
		t.Fatalf("net/http's request: err %v, the caller's map used: %v (%v)", err, same(r.Header, h), h)
	}
	resp, err := ReadResponseInto(bufio.NewReader(strings.NewReader("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-B: 2\r\n\r\n")), nil, h)
	if err != nil || !same(resp.Header, h) || len(h) != 2 || h.Get("X-B") != "2" {
		t.Fatalf("fast response: err %v, header %v (the caller's map: %v)", err, resp.Header, same(resp.Header, h))
	}
	clear(h)
	resp, err = ReadResponseInto(bufio.NewReader(strings.NewReader("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")), nil, h)
	if err != nil || same(resp.Header, h) || len(h) != 0 {
		t.Fatalf("net/http's response: err %v, the caller's map used: %v (%v)", err, same(resp.Header, h), h)
	}
}

// TestLimits: ReadFast takes a head at its limits and declines one past any of them,
// consuming nothing, so that the caller's scan reports the excess.
func TestLimits(t *testing.T) {
	t.Parallel()
	const in = "GET /abc HTTP/1.1\r\nHost: a\r\nUser-Agent: bench\r\n\r\n" // 49 bytes; lines 17, 7 and 17
	at := Limits{Bytes: len(in), Fields: 2, LineBytes: 17}
	for _, tc := range []struct {
		name string
		lim  Limits
		take bool
	}{
		{"none", Limits{}, true},
		{"at every limit", at, true},
		{"bytes", Limits{Bytes: len(in) - 1, Fields: 2, LineBytes: 17}, false},
		{"fields", Limits{Bytes: len(in), Fields: 1, LineBytes: 17}, false},
		{"line", Limits{Bytes: len(in), Fields: 2, LineBytes: 16}, false},
	} {
		br := bufio.NewReader(strings.NewReader(in))
		r, n, err := ReadFast(br, nil, tc.lim, nil)
		if err != nil || (r != nil) != tc.take || (r != nil && n != len(in)) {
			t.Errorf("%s: request %v (head %d bytes), err %v; want taken %v", tc.name, r != nil, n, err, tc.take)
		}
		if want := map[bool]int{true: 0, false: len(in)}[tc.take]; br.Buffered() != want {
			t.Errorf("%s: %d bytes left buffered, want %d", tc.name, br.Buffered(), want)
		}
	}
	for _, line := range []string{"GET /a-long-target HTTP/1.1\r\nHost: a\r\n\r\n", "GET / HTTP/1.1\r\nHost: a-longer-host-name\r\n\r\n"} {
		if r, _, _ := ReadFast(bufio.NewReader(strings.NewReader(line)), nil, Limits{LineBytes: 20}, nil); r != nil {
			t.Errorf("%q: taken with a line over 20 bytes", line)
		}
	}
}

// plainWord is scanFields' word test alone.
func plainWord(w string) bool {
	x := word(w, 0)
	return ((x-0x20*ones)&^x|(x&^highs+ones)|x)&highs == 0
}

// TestPlainWord holds the word test to the byte test: every byte value at every
// position, and random words.
func TestPlainWord(t *testing.T) {
	t.Parallel()
	plain := func(w []byte) bool {
		for _, c := range w {
			if c < 0x20 || c > 0x7e {
				return false
			}
		}
		return true
	}
	w := []byte("aaaaaaaa")
	for p := range 8 {
		for c := range 256 {
			w[p] = byte(c)
			if got, want := plainWord(string(w)), plain(w); got != want {
				t.Fatalf("%q: %v, want %v", w, got, want)
			}
		}
		w[p] = 'a'
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		for i := range w {
			w[i] = byte(rng.IntN(256))
			if rng.IntN(2) == 0 {
				w[i] = byte(0x20 + rng.IntN(0x5f))
			}
		}
		if got, want := plainWord(string(w)), plain(w); got != want {
			t.Fatalf("%q: %v, want %v", w, got, want)
		}
	}
}

// TestRelease: a request read after one was handed back has nothing of it (the query of
// the first, its header values), however the pool hands blocks out.
func TestRelease(t *testing.T) {
	for range 20 {
		r, _, err := ReadFast(bufio.NewReader(strings.NewReader("GET /a?x=1 HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nX-B: 2\r\n\r\n")), nil, Limits{}, nil)
		if err != nil || r == nil || r.URL.RawQuery != "x=1" {
			t.Fatalf("first request %v, err %v", r, err)
		}
		Release(r)
		r, _, err = ReadFast(bufio.NewReader(strings.NewReader("GET /b HTTP/1.1\r\nHost: b\r\n\r\n")), nil, Limits{}, nil)
		if err != nil || r == nil {
			t.Fatalf("second request: err %v", err)
		}
		if r.URL.Path != "/b" || r.URL.RawQuery != "" || r.URL.ForceQuery || len(r.Header) != 0 || r.Host != "b" {
			t.Fatalf("second request carries the first's: URL %#v, header %v, host %q", r.URL, r.Header, r.Host)
		}
		for _, v := range r.strs {
			if v != "" {
				t.Fatalf("a header value of the first request is kept: %q", v)
			}
		}
		Release(r)
	}
}

// TestResponseStore: a head no longer than the caller's store is copied there and the
// response's strings are views of it (no string of its own); a longer one gets its own.
func TestResponseStore(t *testing.T) {
	const msg = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: first\r\n\r\nok"
	in := func(s string, b []byte) bool {
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		base := uintptr(unsafe.Pointer(&b[0]))
		return p >= base && p+uintptr(len(s)) <= base+uintptr(len(b))
	}
	for _, size := range []int{len(msg) - 2, len(msg) - 3} { // the head is msg without its body
		store := make([]byte, size)
		br := bufio.NewReader(strings.NewReader(msg))
		resp, err := ReadResponseBlock(br, nil, nil, new(ResponseBlock), store)
		if err != nil {
			t.Fatal(err)
		}
		v := resp.Header["X-A"]
		if len(v) != 1 || v[0] != "first" || resp.Status != "200 OK" {
			t.Fatalf("store of %d: header %v, status %q", size, resp.Header, resp.Status)
		}
		if fits := size >= len(msg)-2; in(v[0], store) != fits || in(resp.Status, store) != fits {
			t.Fatalf("store of %d bytes for a head of %d: values in it %v, want %v", size, len(msg)-2, in(v[0], store), fits)
		}
	}
}

// inStore reports whether s is a view of b.
func inStore(s string, b []byte) bool {
	p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
	base := uintptr(unsafe.Pointer(&b[0]))
	return p >= base && p+uintptr(len(s)) <= base+uintptr(len(b))
}

// TestRequestStore: the head of a request without a body, no longer than the store the
// caller lends, is copied there and the request's strings are views of it, which the
// next head read into the store overwrites; a longer head, and the head of a request
// with a body (its reader may outlive the caller's turn), get a string of their own,
// which the next head leaves alone.
func TestRequestStore(t *testing.T) {
	t.Parallel()
	const (
		get    = "GET /first?q=1 HTTP/1.1\r\nHost: one.example\r\nUser-Agent: first-agent\r\nCookie: a=1\r\n\r\n"
		post   = "POST /first?q=1 HTTP/1.1\r\nHost: one.example\r\nUser-Agent: first-agent\r\nContent-Length: 2\r\nx-lower: v\r\n\r\nok"
		next   = "PUT /second?r=22 HTTP/1.1\r\nHost: two.example\r\nUser-Agent: second-agent\r\nCookie: b=2\r\nX-Pad: ppppppppppppppppppppppppppppppppppppppppppp\r\n\r\n"
		length = len(get)
	)
	tests := []struct {
		name  string
		in    string
		store int
		lent  bool
	}{
		{"fits", get, len(next), true},
		{"fits exactly", get, length, true},
		{"longer than the store", get, length - 1, false},
		{"with a body", post, len(next), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store := make([]byte, tc.store)
			r, _, err := ReadFast(bufio.NewReader(strings.NewReader(tc.in)), nil, Limits{}, store)
			if err != nil || r == nil {
				t.Fatalf("not taken: %v", err)
			}
			if r.Lent() != tc.lent {
				t.Fatalf("Lent %v, want %v", r.Lent(), tc.lent)
			}
			kept := []string{r.URL.Path, r.URL.RawQuery, r.RequestURI, r.Host, r.Proto, r.Header["User-Agent"][0]}
			want := []string{"/first", "q=1", "/first?q=1", "one.example", "HTTP/1.1", "first-agent"}
			for k := range r.Header {
				kept = append(kept, k)
			}
			for i, s := range kept {
				if i < len(want) && s != want[i] {
					t.Fatalf("field %d: %q, want %q", i, s, want[i])
				}
				if in := inStore(s, store); in != tc.lent {
					t.Fatalf("%q in the store: %v, want %v", s, in, tc.lent)
				}
			}
			if tc.lent {
				return
			}
			// The next head written to the store leaves a request of its own alone.
			copy(store, next)
			got := []string{r.URL.Path, r.URL.RawQuery, r.RequestURI, r.Host, r.Proto, r.Header["User-Agent"][0]}
			if !slices.Equal(got, want) {
				t.Fatalf("after the next head: %q, want %q", got, want)
			}
		})
	}
}

// TestRequestStoreOverwritten: a lent request's strings are the store's bytes: the next
// head read into it shows through them (what a caller that keeps one must clone).
func TestRequestStoreOverwritten(t *testing.T) {
	t.Parallel()
	store := make([]byte, 256)
	r, _, err := ReadFast(bufio.NewReader(strings.NewReader("GET /aaaa HTTP/1.1\r\nHost: a\r\n\r\n")), nil, Limits{}, store)
	if err != nil || r == nil || !r.Lent() {
		t.Fatalf("not lent: %v", err)
	}
	path, clone := r.URL.Path, strings.Clone(r.URL.Path)
	if _, _, err := ReadFast(bufio.NewReader(strings.NewReader("GET /bbbb HTTP/1.1\r\nHost: b\r\n\r\n")), nil, Limits{}, store); err != nil {
		t.Fatal(err)
	}
	if path != "/bbbb" || clone != "/aaaa" {
		t.Fatalf("path %q, its clone %q; want the view to show the next head and the clone the first", path, clone)
	}
}
