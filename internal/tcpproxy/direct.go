package tcpproxy

import (
	"errors"
	"io"
	"net"
	"sync"
)

// errNotReady is a read that found nothing without waiting. It is a temporary
// net.Error, so crypto/tls keeps the connection and the record it has half read.
var errNotReady net.Error = notReady{}

type notReady struct{}

func (notReady) Error() string   { return "no data yet" }
func (notReady) Timeout() bool   { return true }
func (notReady) Temporary() bool { return true }

// copier is one direction of a relay whose source socket is read directly (Socket).
// It holds a buffer only while it reads and writes: between a wait's end and the next
// wait (step), so an idle relay holds none.
type copier struct {
	dst    io.Writer
	src    io.Reader // the Socket, or TLS over it
	sock   *Socket   // the source's socket
	out    *Socket   // the socket dst sends on, or nil
	held   bool      // out holds bytes sent with MSG_MORE
	touch  func()
	buf    []byte
	small  *[]byte
	big    *[]byte
	useBig bool // the last pass filled the small buffer: start the next with the big one
	filled int
	n      int64
	err    error
}

var smallPool = sync.Pool{New: func() any { b := make([]byte, smallBuf); return &b }}

// take gets the buffer for a pass of reads from its pool.
func (c *copier) take() {
	if c.useBig {
		c.big = bufPool.Get().(*[]byte)
		c.buf = *c.big
	} else {
		c.small = smallPool.Get().(*[]byte)
		c.buf = *c.small
	}
}

// release gives the buffer back (it holds nothing: filled is 0).
func (c *copier) release() {
	if c.big != nil {
		bufPool.Put(c.big)
	}
	if c.small != nil {
		smallPool.Put(c.small)
	}
	c.big, c.small, c.buf = nil, nil, nil
}

// copyDirect is copyAdaptive for a source read through s. It writes what one pass of
// reads found — several TLS records, or what one read returned — in one write, and
// waits only when a read proved the socket empty: a small write still goes out at once
// (nothing waits for more), and no read is spent finding nothing.
func copyDirect(dst io.Writer, src net.Conn, s *Socket, touch func()) (int64, error) {
	c := &copier{dst: dst, src: src, sock: s, touch: touch, out: sendSocket(dst)}
	if socketOf(src) == nil {
		c.src = s // a plain socket wrapped here: read through the wrapper
	}
	defer c.release()
	err := s.readDirect(c.step)
	if c.err != nil {
		err = c.err
	}
	return c.n, err
}

// step reads until a read finds nothing (false: wait) or the source ends (true).
func (c *copier) step() bool {
	c.take()
	for {
		nr, rerr := c.src.Read(c.buf[c.filled:])
		if nr > 0 {
			c.touch()
			c.filled += nr
		}
		if c.filled > 0 && (rerr != nil || c.filled == len(c.buf)) && !c.flush(rerr == nil && c.sock.queued()) {
			return true
		}
		switch {
		case rerr == nil:
		case errors.Is(rerr, errNotReady):
			c.release()
			if c.held { // TLS read the rest of the socket into a record it cannot finish yet
				c.held = false
				if err := c.out.Push(); err != nil {
					c.err = err
					return true
				}
			}
			return false
		case rerr == io.EOF:
			return true
		default:
			c.err = rerr
			return true
		}
	}
}

// flush writes what was read, then sizes the buffer as copyAdaptive does: the pooled
// big one after a write that filled the small one, the small one again after a write of
// under a quarter of the big one. With more (the buffer is full and the source has
// bytes queued: another flush follows) the write's sends carry MSG_MORE, so the kernel
// gathers a stream's 16 KiB writes (TLS records going down) into full segments: one
// transmission, one wake-up of the peer per 64 KiB instead of per write. The flush that
// follows, without more, sends them; a wait with bytes held pushes them first, and a
// half-close or close sends them too.
func (c *copier) flush(more bool) bool {
	more = more && c.out != nil
	if more {
		c.out.SetMore(true)
	}
	nw, err := c.dst.Write(c.buf[:c.filled])
	if more {
		c.out.SetMore(false)
	}
	c.held = more
	c.n += int64(nw)
	if grow, shrink := !c.useBig && c.filled == len(c.buf), c.useBig && c.filled < len(c.buf)/4; grow || shrink {
		c.release()
		c.useBig = grow
		c.take()
	}
	c.filled = 0
	if err != nil {
		c.err = err
		return false
	}
	return true
}
