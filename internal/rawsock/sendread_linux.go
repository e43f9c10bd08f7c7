package rawsock

import (
	"net"
	"os"
	"syscall"
)

// SendRead sends req and reads its answer into p as one RawConn.Read, saving the read
// that would find nothing yet (an EAGAIN syscall per request on a keep-alive backend).
//
// Why it may wait without trying a read first: Go's poller clears the socket's read
// readiness when RawConn.Read starts (before its first callback), and only a later edge
// (data, an end, an error) wakes a wait after that. The send happens in the callback,
// after the clearing, so the peer's answer to it, whenever it comes, is such an edge.
// A peer that closed the connection before the send (its end's edge came and was
// cleared) answers the send with a reset: an edge too, and the read returns
// ECONNRESET (or EOF). The read deadline bounds the wait as for Read. What the callback
// cannot see is an end or bytes that came BEFORE the send from a peer that stays open
// (a half-close whose end keeps reading, an unasked-for byte): check the socket first
// (the caller's idle peek) when that matters.
//
// Only a send that takes req whole without waiting goes this way: when the socket has
// no room for all of it, SendRead returns sent < len(req), n = 0 and no error, having
// read nothing, and the caller writes the rest (Write) and reads (Read) as usual. A
// failed send returns the count sent and a *net.OpError "write"; a failed read, all of
// req sent, n = 0 and the error Read would return (io.EOF at the end).
//
// SendRead takes both Write's and Read's turn: a concurrent Write waits for the answer.
func (c *Conn) SendRead(req, p []byte) (sent, n int, err error) {
	if len(req) == 0 {
		n, err = c.Read(p)
		return 0, n, err
	}
	if len(p) == 0 {
		n, err = c.Write(req)
		return n, 0, err
	}
	c.wmu.Lock()
	c.rmu.Lock()
	c.sbuf, c.sn, c.serrno = req, 0, 0
	c.rbuf, c.rn, c.rerrno = p, 0, 0
	rerr := c.rc.Read(c.sendReadFn)
	sent, serrno := c.sn, c.serrno
	n, errno := c.rn, c.rerrno
	c.sbuf, c.rbuf = nil, nil // do not keep the caller's buffers
	c.rmu.Unlock()
	c.wmu.Unlock()
	switch {
	case serrno != 0:
		return sent, 0, &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("write", serrno)}
	case sent < len(req):
		if rerr != nil { // the read deadline had passed, or the socket was closed: nothing sent
			return sent, 0, opName(rerr, "read")
		}
		return sent, 0, nil // no room: the caller goes on with Write and Read
	}
	n, err = c.readResult(rerr, n, errno)
	return sent, n, err
}

// sendThenRead is SendRead's callback: on its first call it sends (and then waits,
// the answer cannot have come), on the next ones it reads as Read does.
func (c *Conn) sendThenRead(fd uintptr) bool {
	if req := c.sbuf; req != nil {
		c.sbuf = nil
		for c.sn < len(req) {
			n, errno := SendFD(fd, req[c.sn:])
			switch errno {
			case 0:
				c.sn += n
			case syscall.EAGAIN:
				return true // no room for the rest: the caller writes it
			default:
				c.serrno = errno
				return true
			}
		}
		return false
	}
	return c.readSome(fd)
}
