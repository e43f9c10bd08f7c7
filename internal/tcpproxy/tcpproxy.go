// Package tcpproxy is the L4 path: it copies bytes both ways between a (TLS-terminated)
// client connection and a backend connection, passing half-closes through. It does not
// dial or pick targets (listener does) and never looks at the payload.
package tcpproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// closeWriter is a connection that can close its write side only: *net.TCPConn
// (FIN) and *tls.Conn (close_notify).
type closeWriter interface {
	CloseWrite() error
}

// Relay buffers: a small one per direction, held while the connection is idle, and a
// 16 KiB one (a whole TLS record) borrowed from a pool while data streams.
const (
	smallBuf = 2 << 10
	bigBuf   = 16 << 10
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, bigBuf); return &b }}

// ErrIdle is the error of a relay closed because neither side sent anything for its
// idle timeout.
var ErrIdle = errors.New("relay idle")

// Copy relays client ↔ backend until both directions end or ctx is cancelled, then
// closes both. It returns the bytes sent client→backend (in) and backend→client (out).
// With idle > 0, a relay on which nothing is read in either direction for idle is
// closed (ErrIdle): a client that goes silent, or stops reading so the backend's data
// stalls, must not hold its connection and its backend connection for ever (nginx
// proxy_timeout).
func Copy(ctx context.Context, client, backend net.Conn, idle time.Duration) (in, out int64, err error) {
	var wg sync.WaitGroup
	var errIn, errOut error
	closeBoth := func() {
		client.Close()
		backend.Close()
	}
	stop := context.AfterFunc(ctx, closeBoth)
	defer stop()
	w := watchIdle(idle, closeBoth)
	defer w.stop()
	// The Sockets each side is read and (plain backend) written through, on Linux.
	cs, bs := asSocket(client), asSocket(backend)
	// One direction on a goroutine of its own, the other on the caller's.
	wg.Go(func() { in, errIn = pipe(backend, writerOf(backend, bs), client, cs, w) })
	out, errOut = pipe(client, client, backend, bs, w)
	wg.Wait()
	closeBoth()
	if w.closed() {
		return in, out, fmt.Errorf("%w for %v: closed", ErrIdle, idle)
	}
	return in, out, errors.Join(errIn, errOut)
}

// idleWatch closes a relay once no read has returned data for idle. One timer serves
// both directions (per-direction read deadlines would close a relay that streams one
// way only); reads only record the time, the timer checks it when it fires.
type idleWatch struct {
	idle  time.Duration
	start time.Time    // monotonic base for last
	last  atomic.Int64 // time since start of the latest read with data
	fired atomic.Bool
	timer *time.Timer
}

// watchIdle starts the watch; with idle <= 0 it returns nil, which watches nothing.
func watchIdle(idle time.Duration, closeBoth func()) *idleWatch {
	if idle <= 0 {
		return nil
	}
	w := &idleWatch{idle: idle, start: time.Now()}
	w.timer = time.AfterFunc(idle, func() {
		quiet := time.Since(w.start) - time.Duration(w.last.Load())
		if quiet < w.idle {
			w.timer.Reset(w.idle - quiet)
			return
		}
		w.fired.Store(true)
		closeBoth()
	})
	return w
}

// touch records traffic.
func (w *idleWatch) touch() {
	if w != nil {
		w.last.Store(int64(time.Since(w.start)))
	}
}

// closed reports whether the watch closed the relay.
func (w *idleWatch) closed() bool { return w != nil && w.fired.Load() }

func (w *idleWatch) stop() {
	if w != nil {
		w.timer.Stop()
	}
}

// pipe copies src to dst, writing through dw (dst or its Socket), and, when src ends,
// half-closes dst so the peer sees EOF while the other direction keeps flowing. It does
// not use io.Copy: *net.TCPConn's ReadFrom/WriteTo fall back to io.Copy with a fresh
// 32 KiB buffer per call when the other side is a *tls.Conn, and an idle relay would
// hold two of them. On Linux a TCP source s (the client's socket wrapped by WrapSocket,
// TLS or not, or a plain backend socket) is read directly (copyDirect,
// socket_linux.go): no read that finds nothing.
func pipe(dst net.Conn, dw io.Writer, src net.Conn, s *Socket, w *idleWatch) (int64, error) {
	var n int64
	var err error
	if s != nil && s.askInq() {
		n, err = copyDirect(dw, src, s, w.touch)
	} else {
		n, err = copyAdaptive(dw, src, w.touch)
	}
	if cw, ok := dst.(closeWriter); ok {
		_ = cw.CloseWrite()
	} else {
		_ = dst.Close()
	}
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return n, err
}

// copyAdaptive reads into a small buffer while traffic is sparse, switches to a pooled
// 16 KiB buffer when a read fills the small one, and gives it back when reads get small
// again. touch is called after every read that returned data.
func copyAdaptive(dst io.Writer, src io.Reader, touch func()) (int64, error) {
	small := make([]byte, smallBuf)
	buf := small
	var big *[]byte
	defer func() {
		if big != nil {
			bufPool.Put(big)
		}
	}()
	var n int64
	for {
		nr, rerr := src.Read(buf)
		if nr > 0 {
			touch()
			nw, werr := dst.Write(buf[:nr])
			n += int64(nw)
			if werr != nil {
				return n, werr
			}
		}
		if rerr != nil {
			if rerr == io.EOF {
				return n, nil
			}
			return n, rerr
		}
		switch {
		case big == nil && nr == len(buf):
			big = bufPool.Get().(*[]byte)
			buf = *big
		case big != nil && nr < len(buf)/4:
			bufPool.Put(big)
			big, buf = nil, small
		}
	}
}

// writerOf is what the relay writes dst through: its Socket (raw sends, socket_linux.go)
// when dst is a plain TCP socket, else dst (TLS over a Socket sends through it anyway).
func writerOf(dst net.Conn, s *Socket) io.Writer {
	if s != nil && socketOf(dst) == nil {
		return s
	}
	return dst
}
