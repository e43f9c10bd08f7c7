package listener

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
)

// Accept back-off after a temporary error, as net/http's Server does: 5 ms doubling to
// 1 s. A burst of failures is logged when it begins and, with its count, when it ends
// (or every acceptBurstReport while it lasts), never once per failed accept.
const (
	acceptBackoffMin   = 5 * time.Millisecond
	acceptBackoffMax   = time.Second
	acceptBurstReport  = 10 * time.Second
	acceptKindTemp     = "temporary"
	acceptKindFatal    = "fatal"
	acceptMsgFailing   = "accept failing; backing off"
	acceptMsgRecovered = "accepting again"
)

// Serve accepts until the socket is closed by Shutdown. Temporary accept errors (out of
// file descriptors, a connection aborted before it was accepted, a timeout) back off and
// accepting goes on: returning would leave the socket open, connections piling in its
// backlog, and nobody accepting them for ever. Any other error ends the listener
// loudly: an error log line, tlsgate_accept_errors_total{kind="fatal"}, and Err, which
// /healthz reports.
func (l *Listener) Serve() error {
	l.serving.Store(true)
	defer close(l.loopDone)
	var b acceptBurst
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				b.end(l)
				return nil
			}
			if !temporaryAccept(err) {
				b.end(l)
				return l.fail(err)
			}
			if !l.backoff(b.failed(l, err)) {
				b.end(l)
				return nil // Shutdown began
			}
			continue
		}
		b.end(l)
		if limit := l.state.Load().MaxConnections; limit > 0 && l.open.Load() >= int64(limit) {
			l.refuse(c, limit)
			continue
		}
		l.open.Add(1)
		l.deps.Metrics.ConnectionsOpen.WithLabelValues(l.ID()).Inc()
		l.handing.Add(1) // before the loop can end: Shutdown waits for the loop, then these
		l.dispatch(func() { defer l.handing.Done(); l.handle(c) })
	}
}

// Err returns the error that ended accepting, or nil while the listener accepts (or
// after a Shutdown).
func (l *Listener) Err() error {
	if p := l.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// fail records, logs and counts the error that ends accepting.
func (l *Listener) fail(err error) error {
	err = fmt.Errorf("accepting on %s: %w", l.ln.Addr(), err)
	l.failed.Store(&err)
	l.deps.Metrics.AcceptErrors.WithLabelValues(l.ID(), acceptKindFatal).Inc()
	l.deps.Log.Error("listener stopped accepting", "listener", l.ID(), "error", err.Error())
	return err
}

// backoff waits d, or until Shutdown begins (then it returns false).
func (l *Listener) backoff(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.stopWorkers:
		return false
	}
}

// temporaryAccept reports whether an accept error passes by itself: the process or the
// system is out of file descriptors or buffers (they come back as connections close),
// a client reset its connection before it was accepted, or a deadline.
func temporaryAccept(err error) bool {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED, syscall.ECONNRESET, syscall.ENOBUFS, syscall.ENOMEM, syscall.EINTR} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return isTimeout(err)
}

// acceptBurst is a run of temporary accept errors.
type acceptBurst struct {
	count    int // failures since the last report
	delay    time.Duration
	first    error
	reported time.Time
}

// failed counts err and returns how long to wait before the next accept.
func (b *acceptBurst) failed(l *Listener, err error) time.Duration {
	l.deps.Metrics.AcceptErrors.WithLabelValues(l.ID(), acceptKindTemp).Inc()
	now := time.Now()
	switch {
	case b.delay == 0:
		b.first, b.reported = err, now
		l.deps.Log.Warn(acceptMsgFailing, "listener", l.ID(), "error", err.Error())
	case now.Sub(b.reported) >= acceptBurstReport:
		l.deps.Log.Warn(acceptMsgFailing, "listener", l.ID(), "error", b.first.Error(), "errors", b.count)
		b.count, b.reported = 0, now
	}
	b.count++
	b.delay = min(max(2*b.delay, acceptBackoffMin), acceptBackoffMax)
	return b.delay
}

// end closes a burst, if one is open, with a line giving its count.
func (b *acceptBurst) end(l *Listener) {
	if b.delay == 0 {
		return
	}
	l.deps.Log.Info(acceptMsgRecovered, "listener", l.ID(), "error", b.first.Error(), "errors", b.count)
	*b = acceptBurst{}
}
