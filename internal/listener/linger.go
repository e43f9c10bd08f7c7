package listener

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"tlsgate/internal/rawsock"
)

// A connection closed while its client is still sending is reset by the kernel: the
// data the client sends after the close (and any unread before it) makes the kernel
// answer with RST, which drops what the client's kernel had received but the client not
// yet read: our answer. A client that writes its whole request before it reads (most
// scripts, Python's http.client, a TLS 1.3 client refused for its certificate that
// already sent its request) then sees "connection reset by peer" or "broken pipe" in
// place of the 400 or the alert that said why. nginx's lingering_close avoids this:
// after the answer (and, over TLS, close_notify) it shuts down its side and reads and
// drops what comes until the client closes, lingering_timeout (5 s) of silence or
// lingering_time (30 s) in all. closeLingering does the same, on a goroutine of its own
// (not on the HTTP/1 or handshake worker), for closes where the client's input may be
// unread: an HTTP/1 request refused or answered with its body unread, a TLS 1.3
// handshake refused after the client's last flight, an HTTP/2 connection cut for a
// flood (h2guard.go, under shorter limits) or refused for its TLS (refuseH2). Normal
// closes (keep-alive timeout, the client closed first) do not come here and cost what
// they did.
const (
	// lingerSilence ends the lingering when the client sent nothing for this long
	// (nginx's lingering_timeout).
	lingerSilence = 5 * time.Second
	// lingerTotal ends it after this long in all (nginx's lingering_time).
	lingerTotal = 30 * time.Second
	// lingerMaxBytes ends it once this much was dropped: a client uploading more than
	// this before it reads is closed on, as before. nginx has no such cap; dropping
	// costs a read(2) per 16 KiB (TLS records are not decrypted).
	lingerMaxBytes = 64 << 20
	// closeNotifyWait bounds the write of TLS's close_notify before the half-close: a
	// client that reads nothing must not hold the goroutine on it.
	closeNotifyWait = time.Second
)

// lingerLimits bounds one lingering close.
type lingerLimits struct {
	silence, total time.Duration
	bytes          int64
}

// DefaultMaxLingering is how many connections linger at once, process-wide; the others
// are closed at once, as before lingering existed, and counted
// (tlsgate_lingering_closes_total{result="over_limit"}). Each holds a descriptor, a
// goroutine (a few KiB of stack) and, while a read is in progress, a 16 KiB buffer:
// some 24 MiB at the bound.
const DefaultMaxLingering = 1024

// Lingerers bounds the connections lingering at once; one is shared by every listener
// of the process (Deps.Lingerers).
type Lingerers struct {
	n   atomic.Int64
	max int64
	wg  sync.WaitGroup // the lingering goroutines, for tests
}

// NewLingerers returns a bound of limit connections lingering at once.
func NewLingerers(limit int) *Lingerers { return &Lingerers{max: int64(limit)} }

// take reserves a place; false when all are taken (or s is nil: no lingering).
func (s *Lingerers) take() bool {
	if s == nil {
		return false
	}
	if s.n.Add(1) > s.max {
		s.n.Add(-1)
		return false
	}
	return true
}

func (s *Lingerers) give() { s.n.Add(-1) }

var (
	defaultLinger = lingerLimits{silence: lingerSilence, total: lingerTotal, bytes: lingerMaxBytes}
	dropBufs      = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}
)

// closeLingering closes c, whose client may still be sending, after a lingering close
// (see above) on a goroutine of its own, or at once when Deps.Lingerers is full or
// nil. listener labels the metric. The listener's end (l.ctx) cuts a lingering close
// short.
func (l *Listener) closeLingering(c net.Conn, listener string) {
	l.closeLingeringWith(c, listener, defaultLinger)
}

// closeLingeringWith is closeLingering under other limits (an HTTP/2 connection cut for
// a flood: cutLinger). The caller must have stopped reading c: the lingering close
// becomes its only reader.
func (l *Listener) closeLingeringWith(c net.Conn, listener string, lim lingerLimits) {
	slots := l.deps.Lingerers
	if !slots.take() {
		l.deps.Metrics.Lingering.WithLabelValues(listener, "over_limit").Inc()
		_ = c.Close()
		return
	}
	l.deps.Metrics.Lingering.WithLabelValues(listener, "lingered").Inc()
	slots.wg.Go(func() {
		defer slots.give()
		sock := c
		if tc, ok := c.(*tls.Conn); ok {
			sock = tc.NetConn()
		}
		defer context.AfterFunc(l.ctx, func() { _ = sock.Close() })()
		lingerClose(c, lim)
	})
}

// lingerClose ends c as nginx's lingering close does: close_notify when c is a TLS
// connection, a half-close (FIN: the client reads what was sent, then EOF), then read
// and drop until the client closes, fails, stays silent for lim.silence, or lim.total
// or lim.bytes is reached; then close.
func lingerClose(c net.Conn, lim lingerLimits) {
	if s := socketOf(c); s != nil {
		// Plain reads that wait, under the deadlines set here: no try-read left by the
		// idle wait (sockconn.go), no header timeout armed (deadline.go). This goroutine
		// is the socket's only reader now.
		s.try, s.waitArm = false, 0
	}
	sock := c
	if tc, ok := c.(*tls.Conn); ok {
		_ = tc.SetWriteDeadline(time.Now().Add(closeNotifyWait))
		_ = tc.CloseWrite() // close_notify; the socket stays open for reading
		sock = tc.NetConn()
	}
	defer sock.Close()
	if cw := closeWriter(sock); cw == nil || cw.CloseWrite() != nil {
		return // no half-close: the client would not see the end before lim.silence
	}
	bp := dropBufs.Get().(*[]byte)
	defer dropBufs.Put(bp)
	buf := *bp
	end := time.Now().Add(lim.total)
	for left := lim.bytes; left > 0; {
		now := time.Now()
		if !now.Before(end) {
			return
		}
		d := now.Add(lim.silence)
		if d.After(end) {
			d = end
		}
		_ = sock.SetReadDeadline(d)
		n, err := sock.Read(buf[:min(int64(len(buf)), left)])
		left -= int64(n)
		if err != nil {
			return // EOF: the client closed, having read the answer; or silence, or a reset
		}
	}
}

// closeWriter finds the half-close of a client socket: the TCP connection itself, or
// the one under a PROXY protocol connection (which has none of its own).
func closeWriter(c net.Conn) interface{ CloseWrite() error } {
	for range 4 {
		switch v := c.(type) {
		case interface{ CloseWrite() error }:
			return v
		case interface{ Raw() net.Conn }:
			c = v.Raw()
		default:
			return nil
		}
	}
	return nil
}

// inputLeft reports whether an HTTP/1 connection closing after a request may hold
// client input unread, so that its close must linger: the request's body (nil: none)
// not read to its end, or bytes of a next request already received (a pipelining
// client: in br, in TLS's buffer, in the socket). nginx lingers on the same signs
// (ngx_http_finalize_connection: a body discarded unread, bytes past the request in its
// buffer, a read event ready). Otherwise the close is at once: a request read whole
// behind "Connection: close" costs no goroutine until the client's FIN. And a close
// with requests unread behind it (pipelined, after a panic or "Connection: close")
// lingers: closing at once reset the connection, which could drop the answers sent.
func (h *h1conn) inputLeft(br *bufio.Reader, body io.ReadCloser) bool {
	if body != nil && body != http.NoBody && !bodyEnded(body) {
		return true
	}
	return br.Buffered() > 0 || h.in.hasByte || buffered(h) || pending(h.c)
}

// ender is a body that says when it reached its end (h1parse's, endBody).
type ender interface{ Ended() bool }

func bodyEnded(b io.ReadCloser) bool {
	e, ok := b.(ender)
	return ok && e.Ended()
}

// endWatch gives a request body that does not say when it reached its end (net/http's,
// for a head h1parse's fast path declined: chunked, say) a wrapper that does.
func endWatch(b io.ReadCloser) io.ReadCloser {
	if b == http.NoBody || b == nil {
		return b
	}
	if _, ok := b.(ender); ok {
		return b
	}
	return &endBody{ReadCloser: b}
}

// endBody notes the end of the body it wraps: io.EOF, or io.ErrUnexpectedEOF (the
// client's end came first).
type endBody struct {
	io.ReadCloser
	ended atomic.Bool
}

func (b *endBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		b.ended.Store(true)
	}
	return n, err
}

func (b *endBody) Ended() bool { return b.ended.Load() }

// pending reports whether the socket under c holds bytes not read yet, or the client's
// end (a lingering close then ends at once), without waiting. A socket it cannot look
// at counts as holding bytes: lingering is the safe side.
func pending(c net.Conn) bool {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	rc := rawConnOf(c)
	if rc == nil {
		return true
	}
	var peek [1]byte
	errno := syscall.EAGAIN
	if err := rc.Control(func(fd uintptr) { errno = rawsock.PeekFD(fd, &peek) }); err != nil {
		return false // closed
	}
	return errno == 0
}

// rawConnOf finds the descriptor of a client socket: ours, a TCP connection, or the one
// under a PROXY protocol connection.
func rawConnOf(c net.Conn) syscall.RawConn {
	for range 4 {
		switch v := c.(type) {
		case *sockConn:
			return v.rc
		case syscall.Conn:
			rc, err := v.SyscallConn()
			if err != nil {
				return nil
			}
			return rc
		case interface{ Raw() net.Conn }:
			c = v.Raw()
		default:
			return nil
		}
	}
	return nil
}
