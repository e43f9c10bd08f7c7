// Package tcpproxy is the L4 path: it copies bytes both ways between a (TLS-terminated)
// client connection and a backend connection, passing half-closes through. It does not
// dial or pick targets (listener does) and never looks at the payload.
package tcpproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
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

// Copy relays client ↔ backend until both directions end or ctx is cancelled, then
// closes both. It returns the bytes sent client→backend (in) and backend→client (out).
func Copy(ctx context.Context, client, backend net.Conn) (in, out int64, err error) {
	var wg sync.WaitGroup
	var errIn, errOut error
	stop := context.AfterFunc(ctx, func() {
		client.Close()
		backend.Close()
	})
	defer stop()
	wg.Go(func() { in, errIn = pipe(backend, client) })
	wg.Go(func() { out, errOut = pipe(client, backend) })
	wg.Wait()
	client.Close()
	backend.Close()
	return in, out, errors.Join(errIn, errOut)
}

// pipe copies src to dst and, when src ends, half-closes dst so the peer sees EOF while
// the other direction keeps flowing. It does not use io.Copy: *net.TCPConn's
// ReadFrom/WriteTo fall back to io.Copy with a fresh 32 KiB buffer per call when the
// other side is a *tls.Conn, and an idle relay would hold two of them.
func pipe(dst, src net.Conn) (int64, error) {
	n, err := copyAdaptive(dst, src)
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
// again.
func copyAdaptive(dst io.Writer, src io.Reader) (int64, error) {
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
