// Package lazytime is the clock and the rule of tlsgate's lazy deadlines, shared by the
// listener's client sockets and the proxy's backend sockets. Every deadline set on a
// socket re-arms a runtime timer; as nginx does (NGX_TIMER_LAZY_DELAY), a new deadline
// that falls at most a small slack after the one armed keeps the armed one. The price:
// a timeout may fire early, by at most MaxEarly or a 64th of the timeout when that is
// shorter, never late. Times are nanoseconds since the process's epoch on the monotonic
// clock: time.Since reads that clock alone, where time.Now reads the wall clock too, so
// callers read time.Now only when they really set a deadline. A leaf.
package lazytime

import "time"

// MaxEarly is the most a timeout may fire early (nginx: 300 ms).
const MaxEarly = 250 * time.Millisecond

var epoch = time.Now()

// Now is now, in nanoseconds since epoch.
func Now() int64 { return int64(time.Since(epoch)) }

// Of is t in nanoseconds since epoch (by the monotonic clock when t has its reading, as
// time.Now's do; by the wall clock otherwise); 0 for the zero time (none).
func Of(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return int64(t.Sub(epoch))
}

// Keeps reports whether the armed deadline (ns since epoch, 0: none) may stand for a
// new deadline at t that ends a timeout of d: it is set and at most the slack,
// min(MaxEarly, d/64), before t.
func Keeps(armed, t int64, d time.Duration) bool {
	return armed != 0 && armed <= t && t-armed <= int64(min(MaxEarly, d/64))
}
