// Package logsink coalesces log lines into few write calls. A proxy writes a log line per
// request; one write(2) per line cost about 8 % of a core at 30,000 requests a second.
// Lines are appended to a buffer and written by one goroutine at most every
// FlushInterval (a line after a quiet spell goes out at once), the way nginx's
// access_log buffer= and flush= do. Close writes what is left. It knows nothing of the
// lines' format.
package logsink

import (
	"io"
	"sync"
	"time"
)

const (
	// FlushInterval is the longest a line waits in the buffer.
	FlushInterval = 10 * time.Millisecond
	// maxPending makes writers wait once this much is buffered (a slow disk slows the
	// proxy rather than losing lines or growing without bound).
	maxPending = 1 << 20
)

// Writer buffers lines for an underlying writer.
type Writer struct {
	out io.Writer

	flushing sync.Mutex // one flush at a time: batches go out in order, spare is free
	mu       sync.Mutex
	room     *sync.Cond
	buf      []byte
	spare    []byte
	closed   bool
	wake     chan struct{}
	stop     chan struct{}
	stopped  chan struct{}
	once     sync.Once
}

// New starts the goroutine writing to out; Close stops it.
func New(out io.Writer) *Writer {
	w := &Writer{out: out, wake: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{})}
	w.room = sync.NewCond(&w.mu)
	go w.run()
	return w
}

// Write buffers p (one or more whole lines) and returns at once unless maxPending bytes
// are waiting. After Close it writes through. Concurrent writes do not interleave, so
// handlers need no lock of their own around it.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	for len(w.buf) >= maxPending && !w.closed {
		w.room.Wait()
	}
	if w.closed {
		defer w.mu.Unlock() // one line at a time, as before Close
		return w.out.Write(p)
	}
	w.buf = append(w.buf, p...)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (w *Writer) run() {
	defer close(w.stopped)
	pause := time.NewTimer(0)
	for {
		select {
		case <-w.wake:
		case <-w.stop:
			w.flush()
			return
		}
		w.flush()
		// Lines arriving in the next interval are written together.
		pause.Reset(FlushInterval)
		select {
		case <-pause.C:
		case <-w.stop:
			w.flush()
			return
		}
	}
}

// Flush writes the lines buffered so far before it returns: before a log file is
// reopened they belong in the old one, as nginx's buffer is flushed on USR1.
func (w *Writer) Flush() {
	w.flush()
}

func (w *Writer) flush() {
	w.flushing.Lock()
	defer w.flushing.Unlock()
	w.mu.Lock()
	b := w.buf
	w.buf = w.spare[:0]
	w.mu.Unlock()
	if len(b) > 0 {
		_, _ = w.out.Write(b)
	}
	w.mu.Lock()
	w.spare = b[:0]
	w.room.Broadcast()
	w.mu.Unlock()
}

// Close writes the buffered lines and stops the goroutine; later writes go straight
// to the underlying writer.
func (w *Writer) Close() error {
	w.once.Do(func() {
		close(w.stop)
		<-w.stopped
		w.flushing.Lock() // after a Flush that took lines before these
		defer w.flushing.Unlock()
		w.mu.Lock()
		defer w.mu.Unlock()
		w.closed = true
		rest := w.buf // written after the last flush and before closed was set
		w.buf = nil
		w.room.Broadcast()
		if len(rest) > 0 { // before the lines written after Close
			_, _ = w.out.Write(rest)
		}
	})
	return nil
}
