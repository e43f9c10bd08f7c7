package backend_test

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"tlsgate/internal/backend"
	"tlsgate/internal/config"
)

var refused = os.NewSyscallError("connect", syscall.ECONNREFUSED)

// clockGroup is a wrr group of n targets with weight 1 on a clock the test moves.
func clockGroup(t *testing.T, n int, mutate func(*config.TargetGroup)) (*backend.Group, *time.Time) {
	t.Helper()
	now := time.Unix(1000, 0)
	c := &config.TargetGroup{ID: "g", Scheduler: config.SchedWRR}
	for i := range n {
		w := 1
		c.Targets = append(c.Targets, config.Target{Address: fmt.Sprintf("t%d:1", i), Weight: &w})
	}
	if mutate != nil {
		mutate(c)
	}
	g, err := backend.NewGroup(c, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	return g, &now
}

func picks(g *backend.Group, n int) map[string]int {
	out := map[string]int{}
	for range n {
		if t, err := g.Pick(""); err == nil {
			out[t.Address]++
		}
	}
	return out
}

// TestOutlierEjection: 5 failures in a row eject a target for 10 s, the next ejection
// lasts 20 s; a success in between resets the count; a cancelled or local failure
// does not count.
func TestOutlierEjection(t *testing.T) {
	g, now := clockGroup(t, 2, nil)
	bad := g.Targets[0]
	for range 4 {
		g.Report(bad, refused)
	}
	g.Report(bad, nil) // the streak is broken
	for range 4 {
		g.Report(bad, refused)
	}
	for range 10 {
		g.Report(bad, os.NewSyscallError("socket", syscall.EMFILE)) // local: not counted
	}
	if bad.Ejected(*now) {
		t.Fatal("ejected before 5 failures in a row")
	}
	g.Report(bad, refused)
	if !bad.Ejected(*now) || picks(g, 4)["t0:1"] != 0 {
		t.Fatal("not ejected after 5 failures in a row")
	}
	*now = now.Add(10 * time.Second)
	if bad.Ejected(*now) || picks(g, 4)["t0:1"] == 0 {
		t.Fatal("not back after 10 s")
	}
	for range 5 {
		g.Report(bad, refused)
	}
	*now = now.Add(19 * time.Second)
	if !bad.Ejected(*now) {
		t.Fatal("second ejection shorter than 20 s")
	}
	*now = now.Add(time.Second)
	if bad.Ejected(*now) {
		t.Fatal("second ejection longer than 20 s")
	}
}

// TestOutlierLimits: the only target is never ejected, and at most 50% of a group is.
func TestOutlierLimits(t *testing.T) {
	g, now := clockGroup(t, 1, nil)
	for range 50 {
		g.Report(g.Targets[0], refused)
	}
	if g.Targets[0].Ejected(*now) {
		t.Fatal("the only target was ejected")
	}
	g, now = clockGroup(t, 4, nil)
	for _, tg := range g.Targets {
		for range 5 {
			g.Report(tg, refused)
		}
	}
	ejected := 0
	for _, tg := range g.Targets {
		if tg.Ejected(*now) {
			ejected++
		}
	}
	if ejected != 2 {
		t.Fatalf("%d of 4 targets ejected, want 2 (max_ejection_percent 50)", ejected)
	}
}

// TestPanicMode: when fewer than half of the targets are available, every undrained
// target gets traffic; with panic_threshold 0, none is picked.
func TestPanicMode(t *testing.T) {
	g, _ := clockGroup(t, 3, nil)
	g.Targets[0].SetHealthy(false)
	if p := picks(g, 6); p["t0:1"] != 0 {
		t.Fatalf("picks %v: an unhealthy target got work with 2 of 3 up", p)
	}
	g.Targets[1].SetHealthy(false)
	if p := picks(g, 6); p["t0:1"] != 2 || p["t1:1"] != 2 || p["t2:1"] != 2 {
		t.Fatalf("picks %v: want all three in panic mode (1 of 3 up)", p)
	}
	zero := 0
	g, _ = clockGroup(t, 2, func(c *config.TargetGroup) { c.PanicThreshold = &zero })
	g.Targets[0].SetHealthy(false)
	g.Targets[1].SetHealthy(false)
	if _, err := g.Pick(""); err == nil {
		t.Fatal("picked a target with panic mode off and every target down")
	}
}

// TestRetryPicksAnother: Retry never returns a target already tried.
func TestRetryPicksAnother(t *testing.T) {
	g, _ := clockGroup(t, 3, nil)
	first, _ := g.Pick("")
	second := g.Retry("", []*backend.Target{first})
	third := g.Retry("", []*backend.Target{first, second})
	if second == nil || third == nil || second == first || third == first || third == second {
		t.Fatalf("retries %v %v %v", first, second, third)
	}
	if g.Retry("", []*backend.Target{first, second, third}) != nil {
		t.Fatal("a fourth target out of three")
	}
}

// TestAdoptKeepsHealth: a rebuilt group keeps the health of targets whose address
// stayed; a new target starts healthy.
func TestAdoptKeepsHealth(t *testing.T) {
	old, now := clockGroup(t, 3, nil)
	old.Targets[0].SetHealthy(false)
	for range 5 {
		old.Report(old.Targets[1], refused)
	}
	next, _ := clockGroup(t, 3, func(c *config.TargetGroup) { c.Targets[2].Address = "new:1" })
	next.Adopt(old)
	if next.Targets[0].Healthy() || !next.Targets[1].Ejected(*now) || !next.Targets[2].Healthy() {
		t.Fatal("health not carried over, or a new target did not start healthy")
	}
}

// TestNoClockUntilEjected: picks and reported successes do not read the clock while no
// target of the group was ever ejected (they are every request's); once one was, picks
// do, and the ejection ends on time.
func TestNoClockUntilEjected(t *testing.T) {
	reads, now := 0, time.Unix(1000, 0)
	w := 1
	c := &config.TargetGroup{ID: "g", Scheduler: config.SchedWRR,
		Targets: []config.Target{{Address: "a:1", Weight: &w}, {Address: "b:1", Weight: &w}}}
	g, err := backend.NewGroup(c, func() time.Time { reads++; return now })
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		tg, err := g.Pick("")
		if err != nil {
			t.Fatal(err)
		}
		g.Report(tg, nil)
	}
	if reads != 0 {
		t.Fatalf("%d clock reads for picks and successes with nothing ejected", reads)
	}
	for range 5 {
		g.Report(g.Targets[0], refused)
	}
	if got := picks(g, 4)["a:1"]; got != 0 || reads == 0 {
		t.Fatalf("ejected target picked %d times (clock read %d times)", got, reads)
	}
	now = now.Add(10 * time.Second)
	if picks(g, 4)["a:1"] == 0 {
		t.Fatal("not back after its ejection")
	}
}
