package rawsock

import (
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Conn is a TCP socket whose Read and Write are read(2) and send(2) made as raw
// syscalls inside RawConn.Read and RawConn.Write; everything else is the socket's own.
// The zero Conn is not usable: Init it (in place, so a struct embedding it needs no
// allocation of its own) or get one from Wrap.
type Conn struct {
	*net.TCPConn
	rc syscall.RawConn

	// The read and the write in progress. rmu and wmu make concurrent Reads (and
	// Writes) take turns, as net.Conn allows them: the state is set before RawConn's own
	// lock is taken. The callbacks are bound once (a closure per call would allocate).
	rmu    sync.Mutex
	readFn func(fd uintptr) bool
	rbuf   []byte
	rn     int
	rerrno syscall.Errno

	wmu    sync.Mutex
	more   atomic.Bool // sends carry MSG_MORE (SetMore)
	sendFn func(fd uintptr) bool
	wbuf   []byte
	wn     int
	werrno syscall.Errno

	// SendRead's send, made in its read's callback (sendread_linux.go).
	sendReadFn func(fd uintptr) bool
	sbuf       []byte
	sn         int
	serrno     syscall.Errno
}

// Init makes c the raw reader and writer of tcp; false when tcp has no descriptor to
// reach (then c must not be used).
func (c *Conn) Init(tcp *net.TCPConn) bool {
	rc, err := tcp.SyscallConn()
	if err != nil {
		return false
	}
	c.TCPConn, c.rc = tcp, rc
	c.readFn, c.sendFn, c.sendReadFn = c.readSome, c.sendSome, c.sendThenRead
	return true
}

// RawConn returns the socket's syscall.RawConn (the one Init took).
func (c *Conn) RawConn() syscall.RawConn { return c.rc }

// Read reads into p as net.TCPConn.Read does: it waits on the poller while the socket
// is empty (under the read deadline), answers io.EOF at the end, and fails with a
// *net.OpError "read" (net.ErrClosed after Close, os.ErrDeadlineExceeded on the
// deadline, the errno as an os.SyscallError).
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	c.rbuf, c.rn, c.rerrno = p, 0, 0
	err := c.rc.Read(c.readFn)
	n, errno := c.rn, c.rerrno
	c.rbuf = nil // do not keep the caller's buffer
	c.rmu.Unlock()
	return c.readResult(err, n, errno)
}

// readResult is a read's outcome as Read returns it: err from RawConn, n and errno
// from the callback.
func (c *Conn) readResult(err error, n int, errno syscall.Errno) (int, error) {
	switch {
	case err != nil:
		return 0, opName(err, "read") // "raw-read", from RawConn
	case errno != 0:
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("read", errno)}
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// readSome reads once; false when the socket is empty (wait for data or an end).
func (c *Conn) readSome(fd uintptr) bool {
	n, errno := ReadFD(fd, c.rbuf)
	if errno == syscall.EAGAIN {
		return false
	}
	c.rn, c.rerrno = n, errno
	return true
}

// Write sends p whole as net.TCPConn.Write does: a partial send goes on where it
// stopped, a full socket waits on the poller for room (under the write deadline), and
// an error comes with the count sent, as a *net.OpError "write" (net.ErrClosed after
// Close, os.ErrDeadlineExceeded on the deadline, the errno as an os.SyscallError). A
// reset peer is EPIPE or ECONNRESET without a SIGPIPE (MSG_NOSIGNAL).
func (c *Conn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.wmu.Lock()
	c.wbuf, c.wn, c.werrno = p, 0, 0
	err := c.rc.Write(c.sendFn)
	n, errno := c.wn, c.werrno
	c.wbuf = nil
	c.wmu.Unlock()
	if errno != 0 {
		return n, &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("write", errno)}
	}
	if err != nil {
		return n, opName(err, "write") // "raw-write", from RawConn
	}
	return n, nil
}

// SetMore makes the Writes that follow, until SetMore(false), send with MSG_MORE: the
// kernel keeps their bytes in its queue, to go out in full segments, until a send
// without it, Push, a shutdown or a close. Whoever sets it owes one of those: bytes
// held while the peer waits for them are a stall, not a batch.
func (c *Conn) SetMore(on bool) { c.more.Store(on) }

// Push sends what sends with MSG_MORE left in the kernel's queue (clearing TCP_CORK,
// which was not set, pushes pending frames: tcp_push_pending_frames).
func (c *Conn) Push() error {
	var errno syscall.Errno
	err := c.rc.Control(func(fd uintptr) { errno = pushFD(fd) })
	if err == nil && errno != 0 {
		err = os.NewSyscallError("setsockopt", errno)
	}
	return err
}

// pushFD is Push on a descriptor.
func pushFD(fd uintptr) syscall.Errno {
	zero := int32(0)
	_, _, errno := syscall.RawSyscall6(syscall.SYS_SETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_CORK, uintptr(unsafe.Pointer(&zero)), 4, 0)
	return errno
}

// sendSome sends what is left of wbuf; false when the socket is full (wait for room).
func (c *Conn) sendSome(fd uintptr) bool {
	return c.sendWith(fd, c.more.Load())
}

// sendWith is sendSome with the flag as read at its start. The flag is the socket's, so
// a send of another goroutine (crypto/tls answering a KeyUpdate while the relay's other
// direction reads) can take it while a flush has it on. Such a send may reach the kernel
// after the flusher's SetMore(false) and its Push, and nothing would push it after: so
// a send made with the flag pushes itself when it finds the flag off at its end. Sends
// that see it still on leave the push to the flusher, who owes it after SetMore(false).
func (c *Conn) sendWith(fd uintptr, more bool) bool {
	flags := uintptr(unix.MSG_NOSIGNAL)
	if more {
		flags |= unix.MSG_MORE
	}
	for c.wn < len(c.wbuf) {
		n, errno := sendFD(fd, c.wbuf[c.wn:], flags)
		switch errno {
		case 0:
			c.wn += n
		case syscall.EAGAIN:
			return false // the rest is sent by a later call, which reads the flag again
		default:
			c.werrno = errno
			return true
		}
	}
	if more && !c.more.Load() {
		pushFD(fd)
	}
	return true
}

// opName renames RawConn's "raw-read"/"raw-write" to the operation net.TCPConn names.
func opName(err error, op string) error {
	if oe, ok := err.(*net.OpError); ok {
		oe.Op = op
	}
	return err
}

// ReadFD reads fd once with read(2) as a raw syscall, retrying EINTR. Call it only on
// a non-blocking descriptor, inside a RawConn callback.
func ReadFD(fd uintptr, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	for {
		n, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		if errno != syscall.EINTR {
			if errno != 0 {
				return 0, errno
			}
			return int(n), 0
		}
	}
}

// SendFD sends p on fd once with send(2) and MSG_NOSIGNAL as a raw syscall, retrying
// EINTR; it may send less than p. Call it only on a non-blocking descriptor, inside a
// RawConn callback.
func SendFD(fd uintptr, p []byte) (int, syscall.Errno) {
	return sendFD(fd, p, unix.MSG_NOSIGNAL)
}

// sendFD is SendFD with the send's flags.
func sendFD(fd uintptr, p []byte, flags uintptr) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	for {
		n, _, errno := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), flags, 0, 0)
		if errno != syscall.EINTR {
			if errno != 0 {
				return 0, errno
			}
			return int(n), 0
		}
	}
}

// PeekFD peeks at fd's next byte without waiting (recv with MSG_PEEK|MSG_DONTWAIT as a
// raw syscall, EINTR retried): 0 when there is a byte or an end (EOF), EAGAIN when
// the socket is empty, else the socket's error. Call it inside a RawConn callback.
func PeekFD(fd uintptr, b *[1]byte) syscall.Errno {
	for {
		_, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1, syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		if errno != syscall.EINTR {
			return errno
		}
	}
}

// ReadFrom copies r into the socket through Write. Without it the embedded
// net.TCPConn's would be promoted, and an io.Copy into a Conn would write with splice,
// sendfile or the socket's own Write: outside the raw calls.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) { return io.Copy(writerOnly{c}, r) }

// WriteTo copies the socket to w through Read, for the same reason as ReadFrom.
func (c *Conn) WriteTo(w io.Writer) (int64, error) { return io.Copy(w, readerOnly{c}) }

// writerOnly and readerOnly hide every method but Write and Read from io.Copy, which
// would otherwise call ReadFrom or WriteTo again.
type writerOnly struct{ w io.Writer }

func (o writerOnly) Write(p []byte) (int, error) { return o.w.Write(p) }

type readerOnly struct{ r io.Reader }

func (o readerOnly) Read(p []byte) (int, error) { return o.r.Read(p) }
