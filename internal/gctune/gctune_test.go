package gctune

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// percentNow reads the GC percent without changing it.
func percentNow() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		live uint64
		want int
	}{
		{0, 400},        // before the first collection: the floor
		{1 * mib, 400},  // goal max(5 MiB, 16 MiB): the floor
		{4 * mib, 300},  // goal 16 MiB
		{6 * mib, 166},  // goal 16 MiB
		{8 * mib, 100},  // twice the live heap is the floor: Go's default
		{64 * mib, 100}, // many connections: unchanged
	} {
		if got := Percent(tc.live, MinGoal); got != tc.want {
			t.Errorf("Percent(%d MiB) = %d, want %d", tc.live/mib, got, tc.want)
		}
	}
}

// TestTunerFollowsLiveHeap: with a small live heap the percent is raised after a
// collection; with a live heap past half the floor it is Go's default again; Stop
// restores what was set before.
func TestTunerFollowsLiveHeap(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	debug.SetGCPercent(100)
	tu := Start(MinGoal)
	if tu == nil {
		t.Fatal("Start gave nil without GOGC or GOMEMLIMIT")
	}
	defer tu.Stop()
	if second := Start(MinGoal); second != nil {
		second.Stop()
		t.Fatal("a second Start tuned too")
	}
	done := make(chan struct{}, 1)
	tu.mu.Lock()
	tu.adjusted = func() {
		select {
		case done <- struct{}{}:
		default:
		}
	}
	tu.mu.Unlock()
	// until collects until an adjustment leaves a percent that ok accepts.
	until := func(what string, ok func(int) bool) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			runtime.GC()
			select {
			case <-done: // the cleanup of a collection's sentinel ran adjust
			case <-deadline:
				t.Fatalf("percent %d after 30 s of collections, want %s", percentNow(), what)
			}
			if ok(percentNow()) {
				return
			}
		}
	}
	until("at least 300 with a small live heap", func(p int) bool { return p >= 300 })
	ballast := make([][]byte, 12)
	for i := range ballast {
		ballast[i] = make([]byte, 1<<20)
	}
	until("100 with a 12 MiB live heap", func(p int) bool { return p == 100 })
	runtime.KeepAlive(ballast)
	tu.Stop()
	debug.SetGCPercent(100)
}

// TestStartLeavesOperatorSettings: GOGC or GOMEMLIMIT set, the collector is left alone.
func TestStartLeavesOperatorSettings(t *testing.T) {
	for _, env := range []string{"GOGC", "GOMEMLIMIT"} {
		t.Run(env, func(t *testing.T) {
			t.Setenv("GOGC", "")
			t.Setenv("GOMEMLIMIT", "")
			t.Setenv(env, "100")
			debug.SetGCPercent(100)
			if tu := Start(MinGoal); tu != nil {
				tu.Stop()
				t.Fatalf("Start tuned with %s set", env)
			}
			runtime.GC()
			if p := percentNow(); p != 100 {
				t.Fatalf("percent %d with %s set, want 100", p, env)
			}
		})
	}
}
