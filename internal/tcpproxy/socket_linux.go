package tcpproxy

import (
	"encoding/binary"
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"tlsgate/internal/rawsock"
)

// Socket is a TCP socket the relay reads straight from its descriptor, inside one
// syscall.RawConn.Read per wait, to save the read that finds nothing (EAGAIN) before
// each wait: two syscalls of six per keep-alive round trip.
//
// Why one RawConn.Read, and why TCP_INQ: Go's poller clears a socket's readiness before
// every read (pollDesc.prepareRead), so a goroutine that skipped the failing read and
// went straight to a new wait could sleep through data that arrived after its last
// read: its edge would have been cleared. Inside one RawConn.Read the readiness is
// cleared once, before the first read; every later arrival sets it again, and the
// callback returning false waits for exactly that. The relay may wait only when a read
// proves the socket empty, and a short read does not: a FIN that came with the data is
// consumed by the read that returns the data, no edge follows, and the relay would
// hang. So reads are recvmsg with TCP_INQ (Linux 4.18), whose answer counts the bytes
// still queued and is non-zero after a FIN (tcp_inq_hint): zero means nothing to read
// until the next edge. Without the option's answer the relay reads until EAGAIN, as Go
// does.
//
// A client's socket is wrapped before tls.Server (WrapSocket), so the TLS layer's reads
// come here too; outside the relay's callback (the handshake, say) Read is rawsock's.
//
// Why raw syscalls (syscall.RawSyscall: no entersyscall/exitsyscall around them): the
// socket is non-blocking, so recvmsg and send never wait, yet Go's ordinary syscall path
// marks the P as in a syscall, and with the server on one core (GOMAXPROCS=1) that is
// what kept Go's sysmon thread polling every 20 µs while the relay was busy: each
// entersyscall after an idle spell woke it from its deep sleep, and it retook the P from
// a write it caught twice and handed it to another thread (a futex wake, and the
// writer's thread parked when its write returned). Keep-alive round trips measured 0.10
// nanosleep, 0.02 futex and 0.26 context switches each (nginx 0.06), 10-15 % of the
// server's CPU; with raw calls sysmon sleeps, one thread does the work (bench/README.md,
// "tcp2"). Waiting (EAGAIN), deadlines and closing stay Go's poller's: every raw call
// runs inside RawConn.Read or RawConn.Write, which hold the descriptor against a
// concurrent Close. The writes, and the reads outside the relay's callback, are
// rawsock's (shared with the HTTPS path); the relay's direct reads are recvmsg here.
type Socket struct {
	rawsock.Conn // the socket: *net.TCPConn with raw Read and Write
	rc           syscall.RawConn

	// Used only by the goroutine that runs the relay's callback.
	fd      int
	direct  bool // inside the callback: read fd, never wait
	drained bool // the last read left the socket empty: reads answer errNotReady
	msg     syscall.Msghdr
	iov     syscall.Iovec
	oob     [64]byte
}

// WrapSocket wraps c when it is a plain TCP socket; else (a PROXY header reader, which
// may hold bytes the socket no longer shows) it returns c as it is.
func WrapSocket(c net.Conn) net.Conn {
	if s := newSocket(c); s != nil {
		return s
	}
	return c
}

func newSocket(c net.Conn) *Socket {
	tcp, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	s := new(Socket)
	if !s.Init(tcp) {
		return nil
	}
	s.rc = s.RawConn()
	return s
}

// socketOf returns the Socket under c (itself, or under TLS), or nil.
func socketOf(c net.Conn) *Socket {
	if n, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = n.NetConn()
	}
	s, _ := c.(*Socket)
	return s
}

// asSocket returns the Socket for a connection the relay reads: the client's wrapped
// one, or a backend's plain TCP socket wrapped here; nil when there is none.
func asSocket(c net.Conn) *Socket {
	if s := socketOf(c); s != nil {
		return s
	}
	return newSocket(c)
}

// sendSocket returns the Socket dst's writes are sent on (dst itself, or under TLS), or
// nil.
func sendSocket(dst io.Writer) *Socket {
	if c, ok := dst.(net.Conn); ok {
		return socketOf(c)
	}
	return nil
}

// queued reports whether the last read left bytes (or an end) in the socket: false
// after a read that proved it empty.
func (s *Socket) queued() bool { return !s.drained }

// askInq turns TCP_INQ on; false when the kernel refuses (then reads go on to EAGAIN).
func (s *Socket) askInq() bool {
	var serr error
	err := s.rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_INQ, 1)
	})
	return err == nil && serr == nil
}

// Read is rawsock's Read (read(2) as a raw syscall, waiting on the poller), except
// inside the relay's callback: there it reads the descriptor once, or answers
// errNotReady (temporary, so TLS keeps the connection) without a syscall when the last
// read proved the socket empty.
func (s *Socket) Read(p []byte) (int, error) {
	if !s.direct {
		return s.Conn.Read(p)
	}
	if s.drained {
		return 0, errNotReady
	}
	return s.recv(p)
}

// recv reads fd once with recvmsg (a raw syscall: the socket never blocks) and notes
// whether it left the socket empty.
func (s *Socket) recv(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.iov.Base = &p[0]
	s.iov.SetLen(len(p))
	s.msg.Iov, s.msg.Iovlen = &s.iov, 1
	var n uintptr
	var errno syscall.Errno
	for {
		s.msg.Control = &s.oob[0]
		s.msg.SetControllen(len(s.oob))
		n, _, errno = syscall.RawSyscall(syscall.SYS_RECVMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&s.msg)), 0)
		if errno != syscall.EINTR {
			break
		}
	}
	s.iov.Base = nil // do not keep the caller's buffer
	switch {
	case errno == syscall.EAGAIN:
		s.drained = true
		return 0, errNotReady
	case errno != 0:
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: s.LocalAddr(), Addr: s.RemoteAddr(), Err: os.NewSyscallError("read", errno)}
	case n == 0:
		return 0, io.EOF
	}
	s.drained = s.inqZero()
	return int(n), nil
}

// cmsgInq is where a TCP_CM_INQ message sits in the control buffer: its header (length,
// level, type) and its int32.
var (
	cmsgLevel = int(unsafe.Offsetof(syscall.Cmsghdr{}.Level))
	cmsgType  = int(unsafe.Offsetof(syscall.Cmsghdr{}.Type))
	cmsgData  = syscall.CmsgLen(0)
)

// inqZero reports whether the last recvmsg said nothing is left to read (no bytes, no
// FIN). Without that answer it reports false: read again.
func (s *Socket) inqZero() bool {
	if int(s.msg.Controllen) < cmsgData+4 {
		return false
	}
	ne := binary.NativeEndian
	if int32(ne.Uint32(s.oob[cmsgLevel:])) != unix.IPPROTO_TCP || int32(ne.Uint32(s.oob[cmsgType:])) != unix.TCP_CM_INQ {
		return false
	}
	return ne.Uint32(s.oob[cmsgData:]) == 0
}

// readDirect runs step inside one RawConn.Read of s: the poller's readiness is cleared
// once, before step's first read, and step returning false waits for data or an end.
// step reads through src, which reads s's descriptor (s itself or TLS over it).
func (s *Socket) readDirect(step func() bool) error {
	return s.rc.Read(func(fd uintptr) bool {
		s.fd, s.direct, s.drained = int(fd), true, false
		done := step()
		s.direct = false
		return done
	})
}
