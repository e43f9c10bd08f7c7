package h1parse

import (
	"bufio"
	"io"
	"net/http"
)

// ReadResponse reads a response to req (nil: a GET) as http.ReadResponse(br, req)
// would. When nothing is buffered it waits for the first bytes (and returns that read's
// error as http.ReadResponse would); then the fast path takes a common response whose head is buffered whole, and
// anything else goes to http.ReadResponse on the untouched reader.
func ReadResponse(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	return ReadResponseInto(br, req, nil)
}

// ReadResponseInto is ReadResponse with h, when not nil, an empty map that becomes the
// header of a response the fast path takes (see ReadRequestInto).
func ReadResponseInto(br *bufio.Reader, req *http.Request, h http.Header) (*http.Response, error) {
	return ReadResponseBlock(br, req, h, nil, nil)
}

// ReadResponseBlock is ReadResponseInto with blk, when not nil, the storage of a
// response the fast path takes (the response, its body reader and its header values'
// slices): a caller that reads many responses, one at a time, reuses one block, warm in
// the cache, where each response would be an allocation of about 400 bytes. A response
// read into blk is overwritten by the next: nothing may use it, its body, or a slice of
// its header's values after that.
//
// store, when not nil, is storage for the bytes of a head the fast path takes (one no
// longer than store; a longer one gets a string of its own): the response's strings (its
// status, its header's names and values) are then views of store, and change when the
// caller writes to store again. A fresh string per response was an allocation whose
// first stores missed the cache; a caller that reuses store must keep none of those
// strings beyond that (or clone what it keeps).
func ReadResponseBlock(br *bufio.Reader, req *http.Request, h http.Header, blk *ResponseBlock, store []byte) (*http.Response, error) {
	if br.Buffered() == 0 {
		if _, err := br.Peek(1); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF // as http.ReadResponse says of an empty status line
			}
			return nil, err
		}
	}
	fillFirstLine(br)
	if resp := fastResponse(br, req, h, blk, store); resp != nil {
		return resp, nil
	}
	return http.ReadResponse(br, req)
}

// fastResponse parses the buffered head of a final (2xx-5xx) response in the fast
// path's shape and consumes it; nil, consuming nothing, otherwise. A response that
// would be read until the connection closes (no Content-Length) is declined. blk, when
// not nil, is the storage to use, and store the storage of its strings (ReadResponseBlock).
func fastResponse(br *bufio.Reader, req *http.Request, h http.Header, blk *ResponseBlock, store []byte) *http.Response {
	b, v := buffered(br)
	if len(v) < 14 || v[:7] != "HTTP/1." || (v[7] != '0' && v[7] != '1') || v[8] != ' ' {
		return nil
	}
	code, ok := statusCode(v[9:12])
	if !ok {
		return nil
	}
	end := 12
	if v[end] == ' ' {
		for end++; end < len(v) && v[end] != '\r'; end++ {
			if v[end] < 0x20 || v[end] > 0x7e {
				return nil
			}
		}
	}
	if end+1 >= len(v) || v[end] != '\r' || v[end+1] != '\n' {
		return nil
	}
	var f fields
	hl, ok := scanFields(v, end+2, &f)
	if !ok {
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
	s := f.copyHead(b[:hl], store, hl <= len(store))
	minor := int(s[7] - '0')
	if blk == nil {
		blk = new(ResponseBlock)
	} else {
		blk.strs = [inlineValues]string{} // an earlier response's strings are not kept alive
	}
	resp := &blk.resp
	*resp = http.Response{
		Status:     s[9:end],
		StatusCode: code,
		Proto:      s[:8],
		ProtoMajor: 1,
		ProtoMinor: minor,
		Close:      closes(minor, conn),
		Request:    req,
	}
	length, ok := responseLength(resp, req, n)
	if !ok {
		return nil
	}
	resp.Header = f.header(s, true, blk.strs[:], h)
	if minor == 1 && conn == "close" {
		delete(resp.Header, "Connection") // as net/http's shouldClose does for a response
	}
	_, _ = br.Discard(hl)
	resp.ContentLength = length
	if req != nil && req.Method == http.MethodHead {
		length = 0 // the declared length, no body
	}
	resp.Body = http.NoBody
	if length > 0 {
		blk.body = body{br: br, n: length, closing: resp.Close}
		resp.Body = &blk.body
	}
	return resp
}

// ResponseBlock is one allocation for a response, its body reader and its header
// values (ReadResponseBlock). BlockValues is how many values it holds: a response with
// more fields has its values in storage of their own.
type ResponseBlock struct {
	resp http.Response
	body body
	strs [inlineValues]string
}

// BlockValues is how many header values a ResponseBlock holds. Each is a slice of
// length and capacity one (a field repeated gets a slice of its own by append).
const BlockValues = inlineValues

// statusCode parses three digits; 1xx responses (interim, or a protocol switch) go to
// net/http.
func statusCode(b string) (int, bool) {
	for _, c := range []byte(b) {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	code := int(b[0]-'0')*100 + int(b[1]-'0')*10 + int(b[2]-'0')
	return code, code >= 200
}

// responseLength is the ContentLength net/http gives a response with the Content-Length
// n (-1: none) and the body's length, which are the same but for a response to HEAD
// (no body, the declared length) and 204 / 304 (no body, 0). A response without a
// Content-Length that may have a body is declined (its body runs to the connection's
// end).
func responseLength(resp *http.Response, req *http.Request, n int64) (int64, bool) {
	switch {
	case req != nil && req.Method == http.MethodHead:
		return n, true
	case resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified:
		return 0, true
	case n < 0:
		return 0, false
	}
	return n, true
}
