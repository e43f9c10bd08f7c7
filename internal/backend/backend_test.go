package backend_test

import (
	"errors"
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
	g, err := backend.NewGroup(c)
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
