package httpproxy

import (
	"fmt"
	"net"

	"tlsgate/internal/rawsock"
)

// heldSock is a plain (not TLS) backend socket under its connection's bufio reader and
// writer. A request that goes out in one flush with nothing after it (no body) is held
// at that flush and sent by the read of its answer, in one RawConn.Read
// (rawsock.Conn.SendRead): the read then waits on the poller at once instead of first
// trying a read that finds nothing yet, one EAGAIN syscall per request saved.
//
// It has only Read and Write (the socket is a field, not embedded): bufio would take
// a promoted ReadFrom or WriteTo in their stead, past what is held.
type heldSock struct {
	c    *rawsock.Conn
	hold bool   // the next Write is held (set by holdNext just before the flush)
	held []byte // the bytes held: the bufio.Writer's buffer, untouched until the read
}

// holdNext has the connection's next flush held for its read, when there is one.
func (bc *backendConn) holdNext() {
	if bc.sock != nil && bc.bw.Buffered() > 0 {
		bc.sock.hold = true
	}
}

func (s *heldSock) Write(p []byte) (int, error) {
	if s.hold {
		s.hold, s.held = false, p
		return len(p), nil
	}
	return s.c.Write(p)
}

// Read sends what is held, then reads. A failed send is errNoResponse, as a failed
// flush is (a backend that closed the connection while idle resets it); when the socket
// has no room for it all the rest goes as an ordinary write and read.
func (s *heldSock) Read(p []byte) (int, error) {
	req := s.held
	if req == nil {
		return s.c.Read(p)
	}
	s.held = nil
	sent, n, err := s.c.SendRead(req, p)
	if err != nil {
		if oe, ok := err.(*net.OpError); ok && oe.Op == "write" {
			err = fmt.Errorf("%w: %w", errNoResponse, err)
		}
		return 0, err
	}
	if sent < len(req) {
		if _, err := s.c.Write(req[sent:]); err != nil {
			return 0, fmt.Errorf("%w: %w", errNoResponse, err)
		}
		return s.c.Read(p)
	}
	return n, nil
}
