package listener

import (
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// A burst of handshakes leaves the process holding more memory than its connections
// need: the handshakes' garbage (a full handshake allocates about 60 KB, and Go lets
// the heap grow to twice what is live before it collects), the stacks of the parked
// workers, which the handshakes grew to about 32 KiB each (worker.go), and pooled
// buffers. Go returns free memory to the system slowly, and only down to its next
// collection's goal, so connections left open after a burst cost about a third more
// than they hold. When a listener's handshakes pause for settleQuiet after at least
// settleBurst of them, and none of its workers waits for a kept-alive connection's next
// request (stay.go), it settles: its idle workers exit, and the runtime collects twice
// (sync.Pool keeps its items through one collection) and returns the free memory
// (debug.FreeOSMemory). That is at most one settle per settleBurst handshakes, whose
// garbage (about 15 MB) would itself trigger a collection, none on a steady stream of
// handshakes, and none while requests keep workers waiting.
const (
	settleBurst = 256
	settleQuiet = 500 * time.Millisecond
)

// settler notices the end of a burst of handshakes and then calls settle once.
type settler struct {
	burst  int64
	quiet  time.Duration
	settle func()
	// busy, when set, holds the settle back while it reports true: workers still
	// waiting for their connections' next requests (stay.go) would otherwise park, with
	// their stacks, just after it.
	busy  func() bool
	epoch time.Time    // monotonic origin of last
	count atomic.Int64 // handshakes since the last settle
	last  atomic.Int64 // when the last handshake ended, in ns since epoch

	mu      sync.Mutex
	timer   *time.Timer // armed by the burst-th handshake
	stopped bool
}

func newSettler(settle func()) *settler {
	return &settler{burst: settleBurst, quiet: settleQuiet, settle: settle, epoch: time.Now()}
}

// handshake counts a handshake (completed or failed) that ended now: an atomic add and
// store, and a timer armed once per burst.
func (s *settler) handshake(now time.Time) {
	s.last.Store(int64(now.Sub(s.epoch)))
	if s.count.Add(1) == s.burst {
		s.arm(s.quiet)
	}
}

func (s *settler) arm(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.stopped:
	case s.timer == nil:
		s.timer = time.AfterFunc(d, s.check)
	default:
		s.timer.Reset(d)
	}
}

// check settles if no handshake ended for quiet and nothing is busy, else looks again
// when that may be so.
func (s *settler) check() {
	if idle := time.Since(s.epoch) - time.Duration(s.last.Load()); idle < s.quiet {
		s.arm(s.quiet - idle)
		return
	}
	if s.busy != nil && s.busy() {
		s.arm(s.quiet / 2)
		return
	}
	s.count.Store(0) // the next burst arms the timer again
	s.settle()
}

// stop disarms the settler for good (Shutdown).
func (s *settler) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	if s.timer != nil {
		s.timer.Stop()
	}
}

// workersBusy reports whether a worker is waiting for its connection's next request.
func (l *Listener) workersBusy() bool { return l.staying.Load() > 0 }

// settleMemory is the listener's settle: its idle workers exit, then the process's
// memory settles.
func (l *Listener) settleMemory() {
	l.retireWorkers()
	collect()
}

// retireWorkers makes every worker parked now exit (worker.go), with the stack its
// tasks grew; the next burst starts new ones.
func (l *Listener) retireWorkers() {
	for l.idleWorkers.Load() > 0 {
		select {
		case l.tasks <- retire:
		default:
			return // no worker waits
		}
	}
}

// retire ends the worker that runs it; its deferred calls (the WaitGroup's) run.
func retire() { runtime.Goexit() }

// collecting keeps two listeners that settle at once from collecting twice each.
var collecting sync.Mutex

// collect frees the garbage and the stacks of exited goroutines, then gives the free
// memory back to the system.
func collect() {
	if !collecting.TryLock() {
		return // another listener is collecting for the whole process
	}
	defer collecting.Unlock()
	runtime.GC()         // pooled items move to sync.Pool's victim cache; freed stacks go to the heap
	debug.FreeOSMemory() // a second collection drops the pool's victims, then returns free pages
}
