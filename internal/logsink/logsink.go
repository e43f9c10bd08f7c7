// Package logsink coalesces log lines into few write calls. A proxy writes a log line per
// request; one write(2) per line cost about 8 % of a core at 30,000 requests a second.
// Lines are appended to a batch of up to BatchSize bytes, written by one goroutine when
// it is full and otherwise at most FlushInterval after its first line (a line after a
// quiet spell goes out at once), the way nginx's access_log buffer= and flush= do. The
// batches are a few buffers used in turn, so the one being filled was last touched by
// the kernel's copy of it a batch ago, where a batch's buffer grew anew every interval.
// Close writes what is left. It knows nothing of the lines' format.
package logsink

import (
	"io"
	"sync"
	"time"
)

const (
	// FlushInterval is the longest a line waits in the buffer.
	FlushInterval = 10 * time.Millisecond
	// BatchSize is the size at which a batch is written without waiting for the
	// interval; a longer line is a batch of its own. 256 KiB is about 7 ms of lines at
	// 70,000 requests a second: 64 KiB (nginx's buffer=64k) made four times as many
	// writes, and each write(2) lets the runtime hand the P to another thread (about
	// two context switches a write, by the bench's counts).
	BatchSize = 256 << 10
	// maxPending makes writers wait once this much is waiting in full batches (a slow
	// disk slows the proxy rather than losing lines or growing without bound): four
	// batches, 1 MiB, which the goroutine writes in one go.
	maxPending = 4 * BatchSize
	// maxFree is how many written batches are kept for reuse: those a flush of
	// maxPending and the batch being filled returns, so writers that outrun the
	// goroutine allocate none.
	maxFree = maxPending/BatchSize + 1
)

// Writer buffers lines for an underlying writer.
type Writer struct {
	out io.Writer

	flushing sync.Mutex // one flush at a time: batches go out in order
	mu       sync.Mutex
	room     *sync.Cond
	buf      []byte   // the batch being filled
	full     [][]byte // batches filled and not yet taken by a flush, oldest first
	pending  int      // bytes in full batches not yet written
	free     [][]byte // written batches, the last written (warmest) last
	closed   bool
	wake     chan struct{} // a line was written
	filled   chan struct{} // a batch is full
	stop     chan struct{}
	stopped  chan struct{}
	once     sync.Once
}

// New starts the goroutine writing to out; Close stops it.
func New(out io.Writer) *Writer {
	w := &Writer{out: out, wake: make(chan struct{}, 1), filled: make(chan struct{}, 1),
		stop: make(chan struct{}), stopped: make(chan struct{})}
	w.room = sync.NewCond(&w.mu)
	go w.run()
	return w
}

// Write buffers p (one or more whole lines) and returns at once unless maxPending bytes
// are waiting. After Close it writes through. Concurrent writes do not interleave, so
// handlers need no lock of their own around it.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	for w.pending >= maxPending && !w.closed {
		w.room.Wait()
	}
	if w.closed {
		defer w.mu.Unlock() // one line at a time, as before Close
		return w.out.Write(p)
	}
	filled := len(w.buf) > 0 && len(w.buf)+len(p) > BatchSize
	if filled {
		w.full = append(w.full, w.buf)
		w.pending += len(w.buf)
		w.buf = w.batch()
	}
	// The first line of a batch wakes the goroutine; the later ones go out with it
	// (a flush takes the whole batch).
	first := len(w.buf) == 0
	w.buf = append(w.buf, p...)
	w.mu.Unlock()
	if filled {
		signal(w.filled)
	}
	if first {
		signal(w.wake)
	}
	return len(p), nil
}

// signal wakes the goroutine without waiting: a signal already pending covers this one.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// batch is an empty batch, the last one written if one is free. Called with mu held.
func (w *Writer) batch() []byte {
	if n := len(w.free); n > 0 {
		b := w.free[n-1]
		w.free = w.free[:n-1]
		return b
	}
	return make([]byte, 0, BatchSize)
}

func (w *Writer) run() {
	defer close(w.stopped)
	pause := time.NewTimer(0)
	for {
		select {
		case <-w.wake:
		case <-w.filled:
		case <-w.stop:
			w.flush()
			return
		}
		w.flush()
		pause.Reset(FlushInterval)
		if !w.wait(pause) {
			w.flush()
			return
		}
	}
}

// wait waits out the interval, so that the lines arriving in it are written together,
// and writes the batches that fill meanwhile at once. It reports false when the
// writer is being closed.
func (w *Writer) wait(pause *time.Timer) bool {
	for {
		select {
		case <-pause.C:
			return true
		case <-w.filled:
			w.writeFull()
		case <-w.stop:
			return false
		}
	}
}

// Flush writes the lines buffered so far before it returns: before a log file is
// reopened they belong in the old one, as nginx's buffer is flushed on USR1.
func (w *Writer) Flush() {
	w.flush()
}

// flush writes the full batches and the one being filled.
func (w *Writer) flush() { w.write(true) }

// writeFull writes the full batches.
func (w *Writer) writeFull() { w.write(false) }

func (w *Writer) write(all bool) {
	w.flushing.Lock()
	defer w.flushing.Unlock()
	w.mu.Lock()
	batches, fullBytes := w.full, w.pending
	w.full = nil // Write appends to a new list while these are written
	if all && len(w.buf) > 0 {
		batches = append(batches, w.buf)
		w.buf = w.batch()
	}
	w.mu.Unlock()
	if len(batches) == 0 {
		return
	}
	for _, b := range batches {
		_, _ = w.out.Write(b)
	}
	w.mu.Lock()
	for _, b := range batches {
		if cap(b) == BatchSize && len(w.free) < maxFree {
			w.free = append(w.free, b[:0])
		}
	}
	w.pending -= fullBytes
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
		// Written after the last flush and before closed was set, and written
		// before the lines written after Close.
		for _, b := range append(w.full, w.buf) {
			if len(b) > 0 {
				_, _ = w.out.Write(b)
			}
		}
		w.full, w.buf, w.free, w.pending = nil, nil, nil, 0
		w.room.Broadcast()
	})
	return nil
}
