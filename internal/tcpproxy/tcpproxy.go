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

// 16 KiB holds a whole TLS record; each relay holds two buffers while idle.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

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
// the other direction keeps flowing.
func pipe(dst, src net.Conn) (int64, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	n, err := io.CopyBuffer(dst, src, *bp)
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
