package h2proxy

import (
	"errors"
	"io"
	"net/http"
	"sync"
)

// bodyReader hands the client's request body to one attempt of a round trip. The
// HTTP/2 transport reads it on a goroutine of its own and closes it, perhaps after
// RoundTrip returned; the handler must not return while that goroutine may still read
// the body (net/http forbids reads after the handler), so wait blocks until the
// transport has closed it and no Read is in progress.
//
// A Close before any Read leaves the client's body open, so that an attempt that sent
// nothing can be retried on another connection with the same body.
type bodyReader struct {
	r      io.ReadCloser // nil when the request has no body
	mu     sync.Mutex
	read   bool // a Read began
	closed bool
	reads  sync.WaitGroup // Reads in progress
	done   chan struct{}  // closed by Close
}

var errBodyClosed = errors.New("request body closed")

func newBodyReader(r *http.Request) *bodyReader {
	b := &bodyReader{done: make(chan struct{})}
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		b.r = r.Body
	}
	return b
}

// body is what the outgoing request carries: NoBody when there is none, so the HEADERS
// frame ends the stream.
func (b *bodyReader) body() io.ReadCloser {
	if b.r == nil {
		return http.NoBody
	}
	return b
}

func (b *bodyReader) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return 0, errBodyClosed
	}
	b.read = true
	b.reads.Add(1)
	b.mu.Unlock()
	defer b.reads.Done()
	return b.r.Read(p)
}

// Close ends the attempt's use of the body. Once any of it was read, the client's body
// is closed too, which unblocks a Read waiting for the client.
func (b *bodyReader) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	read := b.read
	b.mu.Unlock()
	close(b.done)
	if read {
		return b.r.Close()
	}
	return nil
}

// started reports whether the transport began reading the body.
func (b *bodyReader) started() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.read
}

// wait returns once the transport is done with the body (see bodyReader).
func (b *bodyReader) wait() {
	if b.r == nil {
		return
	}
	<-b.done
	b.reads.Wait()
}
