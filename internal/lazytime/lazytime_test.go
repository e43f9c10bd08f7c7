package lazytime

import (
	"testing"
	"time"
)

// TestKeeps: an armed deadline stands only when it is set and falls at most
// min(MaxEarly, d/64) before the new one, never after it.
func TestKeeps(t *testing.T) {
	const s = int64(time.Second)
	for _, tc := range []struct {
		armed, t int64
		d        time.Duration
		want     bool
	}{
		{0, 10 * s, time.Minute, false},                                // none armed
		{10 * s, 10 * s, time.Minute, true},                            // the same
		{10*s - int64(MaxEarly), 10 * s, time.Minute, true},            // MaxEarly before
		{10*s - int64(MaxEarly) - 1, 10 * s, time.Minute, false},       // more than MaxEarly
		{10*s - int64(time.Second/64), 10 * s, time.Second, true},      // d/64 before
		{10*s - int64(time.Second/64) - 1, 10 * s, time.Second, false}, // more than d/64
		{10*s + 1, 10 * s, time.Minute, false},                         // armed after: too late
	} {
		if got := Keeps(tc.armed, tc.t, tc.d); got != tc.want {
			t.Errorf("Keeps(%d, %d, %v) = %v, want %v", tc.armed, tc.t, tc.d, got, tc.want)
		}
	}
	if now := time.Now(); Of(now) > Now() || Of(time.Time{}) != 0 {
		t.Errorf("Of(now) %d after Now %d, or Of(zero) %d", Of(now), Now(), Of(time.Time{}))
	}
}
