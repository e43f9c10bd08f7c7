//go:build !linux

package rawsock

import (
	"net"
	"syscall"
)

// Conn is, off Linux, the socket as it is: its Read and Write are net.TCPConn's (the
// raw send needs Linux's MSG_NOSIGNAL; the sysmon cost it saves was measured on Linux).
type Conn struct {
	*net.TCPConn
	rc syscall.RawConn
}

// Init makes c tcp; false when tcp has no descriptor to reach.
func (c *Conn) Init(tcp *net.TCPConn) bool {
	rc, err := tcp.SyscallConn()
	if err != nil {
		return false
	}
	c.TCPConn, c.rc = tcp, rc
	return true
}

// RawConn returns the socket's syscall.RawConn (the one Init took).
func (c *Conn) RawConn() syscall.RawConn { return c.rc }

// ReadFD reads fd once, retrying EINTR.
func ReadFD(fd uintptr, p []byte) (int, syscall.Errno) {
	for {
		n, err := syscall.Read(int(fd), p)
		if err != syscall.EINTR {
			if errno, ok := err.(syscall.Errno); ok {
				return 0, errno
			}
			return max(n, 0), 0
		}
	}
}

// PeekFD peeks at fd's next byte without waiting: 0 when there is a byte or an end,
// EAGAIN when the socket is empty, else the socket's error.
func PeekFD(fd uintptr, b *[1]byte) syscall.Errno {
	for {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if err != syscall.EINTR {
			errno, _ := err.(syscall.Errno)
			return errno
		}
	}
}

// SendRead writes req whole, then reads into p (off Linux, two ordinary calls).
func (c *Conn) SendRead(req, p []byte) (sent, n int, err error) {
	if sent, err = c.Write(req); err != nil {
		return sent, 0, err
	}
	n, err = c.Read(p)
	return sent, n, err
}
