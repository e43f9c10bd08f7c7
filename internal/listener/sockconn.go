package listener

import (
	"crypto/tls"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"tlsgate/internal/rawsock"
)

// sockConn is the TCP socket under an HTTP listener's connection (plain or TLS), so the
// idle wait can use it: readable waits for data by peeking, and after a wait it trusts
// the poller's wake-up instead of peeking again (one syscall less per request). The
// next Read is then a single try: the poller may have reported bytes an earlier read
// already took, and then the try returns errNotReady (temporary, so TLS does not fail
// the connection) rather than parking a worker in the read. With noWait set, Read
// returns errNotReady at once, so buffered can ask TLS for what it holds. Its reads
// and writes are raw syscalls (rawsock: Go's sysmon stays asleep).
type sockConn struct {
	rawsock.Conn // the socket: *net.TCPConn with raw Read and Write
	rc           syscall.RawConn
	try          bool // set by readable, read by the worker it hands the connection to
	noWait       bool

	// The RawConn callbacks and what they read and write, made once per connection (a
	// closure made per call would be a heap allocation per request).
	peekFn, readFn func(fd uintptr) bool
	waited         bool
	peek           [1]byte
	buf            []byte
	n              int
	err            error

	// The deadlines armed on the socket, as nanoseconds since epoch (0: none), for the lazy
	// setters (deadline.go); dmu orders them with the sets themselves.
	dmu      sync.Mutex
	rdl, wdl int64
	// waitArm, when set, is a read deadline to arm before the next read that may wait
	// (the header timeout: see armOnWait).
	waitArm time.Duration
}

// wrapSocket wraps c when it is a plain TCP socket; else it returns c as it is (a PROXY
// header reader may hold data the socket no longer shows).
func wrapSocket(c net.Conn) net.Conn {
	tcp, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	s := new(sockConn)
	if !s.Init(tcp) {
		return c
	}
	s.rc = s.RawConn()
	s.peekFn = s.peekOnce
	s.readFn = s.readOnce
	return s
}

// socketOf returns the socket under c (plain or TLS), or nil when there is none.
func socketOf(c net.Conn) *sockConn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	s, _ := c.(*sockConn)
	return s
}

// readable waits until the socket has data or an end (EOF, error), under its read
// deadline; false when the deadline passed or the socket failed. It reads nothing.
func (s *sockConn) readable() bool {
	s.waited = false
	err := s.rc.Read(s.peekFn)
	s.try = s.waited
	return err == nil
}

func (s *sockConn) peekOnce(fd uintptr) bool {
	if s.waited {
		return true // the poller saw data or an end arrive
	}
	if rawsock.PeekFD(fd, &s.peek) == syscall.EAGAIN {
		s.waited = true
		return false
	}
	return true
}

func (s *sockConn) Read(b []byte) (int, error) {
	switch {
	case s.noWait:
		return 0, errNotReady
	case !s.try:
		if s.waitArm > 0 {
			s.armWait()
		}
		return s.Conn.Read(b)
	}
	s.try = false
	s.buf = b
	rerr := s.rc.Read(s.readFn)
	n, err := s.n, s.err
	s.buf, s.err = nil, nil
	switch {
	case rerr != nil:
		return 0, rerr
	case err == syscall.EAGAIN:
		return 0, errNotReady
	case err != nil:
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: s.LocalAddr(), Addr: s.RemoteAddr(), Err: os.NewSyscallError("read", err)}
	case n == 0 && len(b) > 0:
		return 0, io.EOF
	}
	return n, nil
}

func (s *sockConn) readOnce(fd uintptr) bool {
	n, errno := rawsock.ReadFD(fd, s.buf)
	s.n, s.err = n, nil
	if errno != 0 {
		s.err = errno
	}
	return true
}

// WriteTo copies the socket to w through sockConn's own Read (its single try and
// noWait hold): rawsock.Conn's, promoted, would read past them.
func (s *sockConn) WriteTo(w io.Writer) (int64, error) { return io.Copy(w, readerOnly{s}) }

// readerOnly hides every method but Read from io.Copy.
type readerOnly struct{ r io.Reader }

func (o readerOnly) Read(p []byte) (int, error) { return o.r.Read(p) }

// errNotReady is a read that found nothing without waiting.
var errNotReady net.Error = notReady{}

type notReady struct{}

func (notReady) Error() string   { return "no data yet" }
func (notReady) Timeout() bool   { return true }
func (notReady) Temporary() bool { return true }
