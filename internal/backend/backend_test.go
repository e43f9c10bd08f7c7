package backend_test

import (
	"errors"
	"fmt"
	"testing"

	"tlsgate/internal/backend"
	"tlsgate/internal/config"
)

func group(t *testing.T, weights ...int) *backend.Group {
	t.Helper()
	c := &config.TargetGroup{ID: "g", Scheduler: config.SchedWRR}
	for i, w := range weights {
		c.Targets = append(c.Targets, config.Target{Address: string(rune('a'+i)) + ":1", Weight: &w})
	}
	g, err := backend.NewGroup(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestWRRShares: over one cycle each target gets exactly its weight, and the heaviest
// target is never picked more than 4 times in a row for weights 5:1:1, where plain
// round robin over a weighted list would pick it 5 times (smoothness).
func TestWRRShares(t *testing.T) {
	g := group(t, 5, 1, 1, 0)
	counts := map[string]int{}
	var seq []string
	for range 7 * 10 {
		tg, err := g.Pick("")
		if err != nil {
			t.Fatal(err)
		}
		counts[tg.Address]++
		seq = append(seq, tg.Address)
	}
	if counts["a:1"] != 50 || counts["b:1"] != 10 || counts["c:1"] != 10 || counts["d:1"] != 0 {
		t.Fatalf("counts %v, want 50/10/10/0", counts)
	}
	run := 0
	for i := range seq {
		if seq[i] == "a:1" {
			run++
		} else {
			run = 0
		}
		if run > 4 {
			t.Fatalf("a picked %d times in a row: %v", run, seq[:14])
		}
	}
}

func TestAllDrained(t *testing.T) {
	g := group(t, 0, 0)
	if _, err := g.Pick(""); !errors.Is(err, backend.ErrNoTarget) {
		t.Fatalf("Pick = %v, want ErrNoTarget", err)
	}
}

func TestAcquire(t *testing.T) {
	g := group(t, 1)
	tg, _ := g.Pick("")
	release := tg.Acquire()
	if tg.Active() != 1 {
		t.Fatal("not counted")
	}
	release()
	if tg.Active() != 0 {
		t.Fatal("not released")
	}
}

func TestLeastConn(t *testing.T) {
	c := &config.TargetGroup{ID: "g", Scheduler: config.SchedLeastConn}
	for _, w := range []int{1, 2} {
		c.Targets = append(c.Targets, config.Target{Address: fmt.Sprintf("t%d:1", w), Weight: &w})
	}
	g, err := backend.NewGroup(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Weight 2 takes two in flight for each one of weight 1.
	var got []string
	for range 6 {
		tg, _ := g.Pick("")
		tg.Acquire()
		got = append(got, tg.Address)
	}
	n := 0
	for _, a := range got {
		if a == "t2:1" {
			n++
		}
	}
	if n != 4 {
		t.Fatalf("picks %v: t2 got %d of 6, want 4", got, n)
	}
}

// TestIPHash: a client stays on its target, and removing a target moves only its
// clients (rendezvous hashing).
func TestIPHash(t *testing.T) {
	c := &config.TargetGroup{ID: "g", Scheduler: config.SchedIPHash}
	for i := range 4 {
		w := 1
		c.Targets = append(c.Targets, config.Target{Address: fmt.Sprintf("10.0.0.%d:80", i), Weight: &w})
	}
	g, err := backend.NewGroup(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := map[string]string{}
	for i := range 200 {
		key := fmt.Sprintf("192.0.2.%d:%d", i, 1000+i)
		a, _ := g.Pick(key)
		b, _ := g.Pick(fmt.Sprintf("192.0.2.%d:%d", i, 2000+i)) // other source port
		if a != b {
			t.Fatal("same IP, other port, other target")
		}
		before[key] = a.Address
	}
	g.Targets[0].SetHealthy(false)
	for key, addr := range before {
		a, _ := g.Pick(key)
		if addr != g.Targets[0].Address && a.Address != addr {
			t.Fatalf("client %s moved from %s to %s though its target stayed", key, addr, a.Address)
		}
		if a == g.Targets[0] {
			t.Fatal("unhealthy target picked")
		}
	}
}

// TestPickAllAvailable: with every target available the scheduler gets the group's own
// slice (no allocation per pick) and picks as it does from a copy: the same sequence as
// a group that also has a drained target, which takes the copying path.
func TestPickAllAvailable(t *testing.T) {
	fast, slow := group(t, 5, 1, 1), group(t, 5, 1, 1, 0)
	for i := range 70 {
		a, err := fast.Pick("")
		if err != nil {
			t.Fatal(err)
		}
		b, err := slow.Pick("")
		if err != nil {
			t.Fatal(err)
		}
		if a.Address != b.Address {
			t.Fatalf("pick %d: %s with every target available, %s through the copy", i, a.Address, b.Address)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = fast.Pick("") }); n != 0 {
		t.Fatalf("%v allocations per pick, want 0", n)
	}
}
