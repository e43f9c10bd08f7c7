// Package gctune puts a floor under the garbage collector's heap goal. Go collects when
// the heap has grown by its live size (GOGC=100), but not below 4 MiB; a proxy's live
// heap is small (about 2 MB in the benchmark) and a busy one allocates fast (about
// 44 KB per resumed handshake), so it collected every 2-3 MB: 30 collections a second,
// 14 % of a resumed handshake's CPU. While the live heap is small, Tuner raises the GC
// percent so that the goal is the floor (MinGoal); once twice the live heap reaches the
// floor, Go's default stands, so memory under many connections is what it was. GOGC or
// GOMEMLIMIT in the environment leave the collector as the operator set it. It knows
// nothing else of the process.
package gctune

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// active is set while a Tuner runs: one per process (a second Start returns nil).
var active atomic.Bool

// MinGoal is the heap goal while the live heap is under half of it.
const MinGoal = 16 << 20

// heapMinimum is the runtime's heap goal floor at GOGC=100 (it scales with GOGC).
const heapMinimum = 4 << 20

// Percent is the GC percent that makes the goal about max(2 × live, floor): the floor
// alone while live is small (Go's minimum heap, 4 MiB at 100, scales with the percent),
// then (floor/live − 1) × 100, and 100 once live reaches half the floor.
func Percent(live, floor uint64) int {
	p := int(floor * 100 / heapMinimum)
	if live > 0 {
		p = min(p, int((floor-min(live, floor))*100/live))
	}
	return max(p, 100)
}

// Tuner re-sets the GC percent after every collection from the live heap it left.
type Tuner struct {
	floor    uint64
	mu       sync.Mutex
	stopped  bool
	percent  int // what it last set
	prev     int // the percent before Start, restored by Stop
	sample   []metrics.Sample
	adjusted func() // test hook, called after each adjustment
}

// sentinel is dropped at once; its cleanup runs after the collection that finds it.
type sentinel struct{ _ [32]byte }

// Start tunes the collector with floor as the minimum heap goal, unless GOGC or
// GOMEMLIMIT is set or a Tuner runs already; it returns nil then.
func Start(floor uint64) *Tuner {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" || !active.CompareAndSwap(false, true) {
		return nil
	}
	t := &Tuner{floor: floor, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.prev = debug.SetGCPercent(100)
	t.percent = 100
	t.adjust()
	return t
}

// Stop restores the GC percent the process had before Start. A nil Tuner does nothing.
func (t *Tuner) Stop() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.stopped {
		t.stopped = true
		debug.SetGCPercent(t.prev)
		active.Store(false)
	}
}

// adjust sets the percent for the live heap the last collection left and arms itself
// for the next collection.
func (t *Tuner) adjust() {
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		return
	}
	metrics.Read(t.sample)
	var live uint64
	if t.sample[0].Value.Kind() == metrics.KindUint64 {
		live = t.sample[0].Value.Uint64()
	}
	// Only a change of a tenth or more: each set recomputes the collector's pacing.
	if p := Percent(live, t.floor); p*10 < t.percent*9 || p*10 > t.percent*11 {
		debug.SetGCPercent(p)
		t.percent = p
	}
	hook := t.adjusted
	t.mu.Unlock()
	runtime.AddCleanup(&sentinel{}, func(t *Tuner) { t.adjust() }, t)
	if hook != nil {
		hook()
	}
}
