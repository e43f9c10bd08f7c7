package listener

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"

	"tlsgate/internal/httpproxy"
)

// requestContext is what ends a request's exchange with its backend: the client going
// away, with the cause httpproxy.ErrClientClosed (then the backend connection is closed
// and the request logged as 499), or the listener's end after its drain deadline. An
// HTTP/2 request's client is gone when its stream ends (a reset, the connection
// closed); an HTTP/1 request, read by our loop, is watched by watchClient. Call stop
// when the exchange is over.
func (l *Listener) requestContext(w http.ResponseWriter, r *http.Request) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(l.ctx)
	if hw, ok := w.(*h1writer); ok {
		unwatch := watchClient(hw, r, cancel)
		return ctx, func() { unwatch(); cancel(nil) }
	}
	after := context.AfterFunc(r.Context(), func() { cancel(httpproxy.ErrClientClosed) })
	return ctx, func() { after(); cancel(nil) }
}

// clientWatch waits, on its own goroutine, for an HTTP/1 client to close its side of
// the connection while its request is with the backend (net/http's server does the
// same with a background read). It starts once the request body is read to its end (at
// once without a body): until then the body's reads see the close themselves, and the
// watch must not compete with them for the socket. Pipelined requests are not read:
// the watch looks for the peer's FIN only (hangup), so bytes waiting stay where they are.
type clientWatch struct {
	sock   *sockConn
	cancel context.CancelCauseFunc

	mu      sync.Mutex
	done    chan struct{} // closed when the watching goroutine ends; nil before start
	stopped bool
}

func watchClient(w *h1writer, r *http.Request, cancel context.CancelCauseFunc) (stop func()) {
	sock := socketOf(w.h.c)
	if sock == nil || r.Header.Get("Upgrade") != "" {
		// No socket to watch (a PROXY protocol connection), or an upgrade, whose relay
		// takes the connection over and reads it itself.
		return func() {}
	}
	cw := &clientWatch{sock: sock, cancel: cancel}
	if r.Body == nil || r.Body == http.NoBody {
		cw.start()
	} else {
		r.Body = &watchAtEOF{ReadCloser: r.Body, cw: cw}
	}
	return cw.stop
}

func (cw *clientWatch) start() {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	if cw.done != nil || cw.stopped {
		return
	}
	cw.done = make(chan struct{})
	go func() {
		defer close(cw.done)
		if cw.sock.waitHangup() {
			cw.cancel(httpproxy.ErrClientClosed)
		}
	}()
}

// stop ends the watch and waits for its goroutine, leaving the socket's read deadline
// in the past: the HTTP/1 loop sets its own before it reads again.
func (cw *clientWatch) stop() {
	cw.mu.Lock()
	cw.stopped = true
	done := cw.done
	cw.mu.Unlock()
	if done != nil {
		_ = cw.sock.SetReadDeadline(time.Unix(1, 0))
		<-done
	}
}

// watchAtEOF starts a client watch when the request body has been read to its end.
type watchAtEOF struct {
	io.ReadCloser
	cw *clientWatch
}

func (b *watchAtEOF) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.cw.start()
	}
	return n, err
}
