package backend

import (
	"hash/maphash"
	"net"
	"sync"
)

// WRR is smooth weighted round robin (nginx's algorithm): over any window of
// sum(weights) picks each target gets its weight's share, evenly interleaved.
type WRR struct {
	mu      sync.Mutex
	current map[*Target]int
}

var (
	_ Scheduler = (*WRR)(nil)
	_ Scheduler = LeastConn{}
	_ Scheduler = IPHash{}
)

// NewWRR returns a WRR scheduler for targets.
func NewWRR(targets []*Target) *WRR {
	return &WRR{current: make(map[*Target]int, len(targets))}
}

// Pick implements Scheduler; the key is ignored.
func (w *WRR) Pick(_ string, avail []*Target) *Target {
	w.mu.Lock()
	defer w.mu.Unlock()
	var best *Target
	total := 0
	for _, t := range avail {
		w.current[t] += t.Weight
		total += t.Weight
		if best == nil || w.current[t] > w.current[best] {
			best = t
		}
	}
	if best != nil {
		w.current[best] -= total
	}
	return best
}

// LeastConn picks the target with the fewest requests or connections in flight per
// unit of weight; ties go to the earlier target.
type LeastConn struct{}

// Pick implements Scheduler.
func (LeastConn) Pick(_ string, avail []*Target) *Target {
	var best *Target
	for _, t := range avail {
		// a/wa < b/wb  ⇔  a*wb < b*wa, without division.
		if best == nil || t.Active()*int64(best.Weight) < best.Active()*int64(t.Weight) {
			best = t
		}
	}
	return best
}

// IPHash keeps a client IP on one target (source-IP persistence) with rendezvous
// hashing: when a target goes away, only its clients move. Weights other than 0 are
// not used.
type IPHash struct{}

var seed = maphash.MakeSeed()

// Pick implements Scheduler.
func (IPHash) Pick(key string, avail []*Target) *Target {
	if host, _, err := net.SplitHostPort(key); err == nil {
		key = host
	}
	var best *Target
	var bestScore uint64
	for _, t := range avail {
		score := maphash.String(seed, key+"\x00"+t.Address)
		if best == nil || score > bestScore {
			best, bestScore = t, score
		}
	}
	return best
}
