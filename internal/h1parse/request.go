package h1parse

import (
	"bufio"
	"net/http"
	"net/url"
	"sync"
)

// ReadRequest reads a request as http.ReadRequest(br) would. When nothing is buffered it
// waits for the first bytes (as http.ReadRequest would, and returns that read's error
// unchanged), and reads once more when they are not yet a line (fillFirstLine); then the fast path takes a common request whose head is buffered whole,
// and anything else goes to http.ReadRequest on the untouched reader.
func ReadRequest(br *bufio.Reader) (*http.Request, error) { return ReadRequestInto(br, nil) }

// ReadRequestInto is ReadRequest with h, when not nil, an empty map that becomes the
// header of a request the fast path takes, so that a caller can reuse the maps of
// requests it is done with (two allocations and about 400 bytes each); a request read
// by net/http has a map of its own. h must not be used otherwise until the request is
// done with.
func ReadRequestInto(br *bufio.Reader, h http.Header) (*http.Request, error) {
	return readRequest(br, h, nil)
}

// readRequest is ReadRequestInto with store lent to the fast path (ReadFast's).
func readRequest(br *bufio.Reader, h http.Header, store []byte) (*http.Request, error) {
	r, _, err := ReadFast(br, h, Limits{}, store)
	switch {
	case err != nil:
		return nil, err
	case r != nil:
		return &r.Request, nil
	}
	return http.ReadRequest(br)
}

// Limits bound a head the fast path takes; zero means no bound. A head past one is
// declined (nothing consumed), so that the caller's own scan of it finds and reports
// the excess.
type Limits struct {
	Bytes     int // the whole head, request line and final CRLF included
	Fields    int // header lines
	LineBytes int // one line (the request line or a field line) without its CRLF
}

// ReadFast is ReadRequestInto's waits and fast path alone, within lim: the request and
// the length of its head, or the first read's error, or neither when the fast path
// declines (nothing consumed; the caller then hands br to http.ReadRequest). A caller
// done with the request may hand it back (Release).
//
// store, when not nil, is storage the caller lends for the bytes of the head of a
// request without a body (one no longer than store): the request's strings (its target,
// Host, header names and values, and what is cut from them) are then views of store
// (Request.Lent), and change when the caller writes to store again, as the next
// ReadFast into it does. A fresh string per request was an allocation whose first
// stores missed the cache. A caller that reuses store must keep none of those strings
// beyond the request (or clone what it keeps). A request with a body always gets a
// string of its own: its body may still be read, by a goroutine of the caller's
// handler, after the caller is done with the request, and that reader may look at the
// request too.
func ReadFast(br *bufio.Reader, h http.Header, lim Limits, store []byte) (*Request, int, error) {
	if br.Buffered() == 0 {
		if _, err := br.Peek(1); err != nil {
			return nil, 0, err
		}
	}
	fillFirstLine(br)
	n := br.Buffered()
	r := fastRequest(br, h, lim, store)
	return r, n - br.Buffered(), nil
}

// within reports whether a head of n bytes, with a longest line of line bytes and its
// fields, is within lim.
func (lim Limits) within(n, line int, f *fields) bool {
	return (lim.Bytes == 0 || n <= lim.Bytes) && (lim.Fields == 0 || f.n <= lim.Fields) &&
		(lim.LineBytes == 0 || line <= lim.LineBytes)
}

// fastRequest parses the buffered head of a request in the fast path's shape and
// consumes it (and binds its body to br); nil, consuming nothing, otherwise. store is
// the storage lent for the head's strings (ReadFast).
func fastRequest(br *bufio.Reader, h http.Header, lim Limits, store []byte) *Request {
	b, v := buffered(br)
	method, ok := fastMethod(v)
	if !ok {
		return nil
	}
	i := len(method) + 1
	path, query, end, ok := target(v, i)
	if !ok || len(v) < end+11 || v[end:end+7] != " HTTP/1" || v[end+7] != '.' ||
		(v[end+8] != '0' && v[end+8] != '1') || v[end+9] != '\r' || v[end+10] != '\n' {
		return nil
	}
	var f fields
	hl, ok := scanFields(v, end+11, &f)
	if !ok || f.host == 0 || !lim.within(hl, max(end+9, f.longest), &f) {
		return nil
	}
	n, ok := f.contentLength(v)
	if !ok {
		return nil
	}
	conn, ok := f.connection(v)
	if !ok {
		return nil
	}
	// The one copy, of the head parsed in place: every string below is a substring of s.
	// A request with a body gets a string of its own (ReadFast).
	lent := hl <= len(store) && n <= 0
	s := f.copyHead(b[:hl], store, lent)
	minor := int(s[end+8] - '0')
	blk := requests.Get().(*Request)
	blk.lent = lent
	blk.url.Path = s[i : i+path]
	r := &blk.Request
	*r = http.Request{
		Method:     method,
		Proto:      s[end+1 : end+9],
		ProtoMajor: 1,
		ProtoMinor: minor,
		Header:     f.header(s, false, blk.strs[:], h),
		Host:       f.value(s, f.host-1),
		Close:      closes(minor, conn),
		RequestURI: s[i:end],
		URL:        &blk.url,
	}
	if query >= 0 {
		r.URL.RawQuery = s[i+path+1 : i+path+1+query]
		r.URL.ForceQuery = query == 0
	}
	_, _ = br.Discard(hl)
	r.ContentLength = max(n, 0)
	r.Body = newBody(br, n, r.Close)
	return blk
}

// Request is a request the fast path read: the request, its URL and its header values
// in one allocation.
type Request struct {
	http.Request
	url  url.URL
	strs [inlineValues]string
	lent bool // the strings are views of the caller's store (ReadFast)
}

// Lent reports whether r's strings are views of the store its caller lent ReadFast, so
// that they change when the caller writes to it again.
func (r *Request) Lent() bool { return r.lent }

// requests are the Requests handed back. A reused one is in the cache where the last
// request left it; a new allocation is memory the process has not touched since the
// last GC cycle, and its first stores missed the cache (the largest item of fastRequest
// on the bare CPU, where its instructions are few).
var requests = sync.Pool{New: func() any { return new(Request) }}

// Release hands back r, which ReadFast returned, for the requests to come. Nothing may
// use r, its URL or its header values slice after: no goroutine of the handler may be
// left, no body reader of r may be in use.
func Release(r *Request) {
	*r = Request{}
	requests.Put(r)
}

// fastMethod returns the request line's method (a constant string) when it is one of
// the common ones and followed by a space.
func fastMethod(b string) (string, bool) {
	for _, m := range methods {
		if len(b) > len(m) && b[:len(m)] == m && b[len(m)] == ' ' {
			return m, true
		}
	}
	return "", false
}

var methods = [...]string{"GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"}

// target scans an origin-form request target from b[i]: a path of characters that
// url.ParseRequestURI keeps as they are (no '%', so Path needs no unescaping and
// RawPath stays empty) and an optional query of visible ASCII without '#', '%' or a
// second '?'. It returns the path's length, the query's (-1 when there is no '?') and
// the index of the space that ends the target.
func target(b string, i int) (path, query, end int, ok bool) {
	if i >= len(b) || b[i] != '/' {
		return 0, 0, 0, false
	}
	j := i
	for j < len(b) && pathChar[b[j]] {
		j++
	}
	path, query = j-i, -1
	if j < len(b) && b[j] == '?' {
		k := j + 1
		for k < len(b) && queryChar[b[k]] {
			k++
		}
		query, j = k-j-1, k
	}
	if j >= len(b) || b[j] != ' ' {
		return 0, 0, 0, false
	}
	return path, query, j, true
}

// pathChar and queryChar are the bytes the fast path takes in a target's path and
// query.
var pathChar, queryChar = func() (p, q [256]bool) {
	for c := range 256 {
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		p[c] = alnum
		q[c] = alnum
	}
	for _, c := range []byte("-._~/$&+,;=:@") {
		p[c] = true
	}
	for _, c := range []byte("-._~/$&+,;=:@!'()*[]") {
		q[c] = true
	}
	return p, q
}()
