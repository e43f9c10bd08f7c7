package httpproxy

import "time"

// The proxy's durations and lazy deadlines are compared on the monotonic clock, as
// nanoseconds since epoch: time.Since reads that clock alone, where time.Now reads the
// wall clock too (two clock reads; a request made five such readings). time.Now is read
// only when a deadline is set.
var epoch = time.Now()

// monoNano is now, in nanoseconds since epoch.
func monoNano() int64 { return int64(time.Since(epoch)) }

// monoOf is t in nanoseconds since epoch (by the monotonic clock when t has its
// reading, as time.Now's do; by the wall clock otherwise); 0 for the zero time (none).
func monoOf(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return int64(t.Sub(epoch))
}
