package h1parse

import (
	"bufio"
	"io"
	"net/http"
	"sync"
)

// body is a Content-Length body read from the connection's reader, with the semantics
// of net/http's own (unexported) body type for that case: a body cut short reads
// io.ErrUnexpectedEOF, the last bytes come with io.EOF, a read after Close is
// http.ErrBodyReadAfterClose, and Close drains what is left so that the connection can
// carry the next message — unless the connection closes after this message.
type body struct {
	mu      sync.Mutex
	br      *bufio.Reader
	n       int64 // bytes left
	closing bool
	sawEOF  bool
	closed  bool
}

// newBody returns http.NoBody for no body (n <= 0), else a body of n bytes from br.
func newBody(br *bufio.Reader, n int64, closing bool) io.ReadCloser {
	if n <= 0 {
		return http.NoBody
	}
	return &body{br: br, n: n, closing: closing}
}

// Read reads from the body.
func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	return b.readLocked(p)
}

func (b *body) readLocked(p []byte) (int, error) {
	if b.sawEOF {
		return 0, io.EOF
	}
	if b.n <= 0 {
		b.sawEOF = true
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.br.Read(p)
	b.n -= int64(n)
	if err == io.EOF {
		b.sawEOF = true
		if b.n > 0 {
			err = io.ErrUnexpectedEOF
		}
	}
	if err == nil && n > 0 && b.n == 0 {
		err = io.EOF
		b.sawEOF = true
	}
	return n, err
}

// Close ends the body; unless the end was read or the connection closes next, it reads
// the rest (net/http's default).
func (b *body) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	var err error
	if !b.sawEOF && !b.closing {
		_, err = io.Copy(io.Discard, lockedBody{b})
	}
	b.closed = true
	return err
}

// Ended reports whether nothing of the body is left on the connection: it was read to
// its end, or the connection's end cut it short. The listener lingers on a close only
// when the client's input may be unread.
func (b *body) Ended() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n <= 0 || b.sawEOF
}

// lockedBody reads a body whose lock is held.
type lockedBody struct{ b *body }

func (l lockedBody) Read(p []byte) (int, error) { return l.b.readLocked(p) }
