package fleet_test

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"
)

// BenchmarkFleetPropagation measures, with three nodes on one etcd, how long a change
// takes from the moment it is stored to the moment every node serves it: 100 pushes
// (`fleet push`, a new target weight each time) and 100 admin API writes on node a
// (denylist entries). It reports p50 and p99 in ms. Not a timed test: run it with
//
//	go test ./internal/fleet -run '^$' -bench Propagation -benchtime 1x
func BenchmarkFleetPropagation(b *testing.B) {
	f, push := newFleet(b, "a", "b", "c")
	f.waitApplied(1, f.nodes...)
	const n = 100
	for b.Loop() {
		var pushes, writes []time.Duration
		for i := range n {
			start := time.Now()
			rev := push(fmt.Sprintf("# push %d\n", i))
			f.waitServing(rev)
			pushes = append(pushes, time.Since(start))
		}
		for i := range n {
			start := time.Now()
			if code := f.nodes[0].adminPost(b, "/api/v1/denylist", fmt.Sprintf(`{"serial":"%X"}`, 0x1000+i)); code != http.StatusCreated {
				b.Fatalf("admin write: %d", code)
			}
			f.waitServing(f.nodes[0].node.Applied())
			writes = append(writes, time.Since(start))
		}
		b.ReportMetric(ms(pct(pushes, 50)), "push-p50-ms")
		b.ReportMetric(ms(pct(pushes, 99)), "push-p99-ms")
		b.ReportMetric(ms(pct(writes, 50)), "admin-p50-ms")
		b.ReportMetric(ms(pct(writes, 99)), "admin-p99-ms")
	}
}

// waitServing waits until every node serves revision rev (no status round trip: the
// node's own view, polled every 200 µs).
func (f *fleetEnv) waitServing(rev int64) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		all := true
		for _, n := range f.nodes {
			if n.node.Applied() < rev {
				all = false
			}
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("revision %d not everywhere after 20 s", rev)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// BenchmarkFleetResumption: a client alternating between three nodes (TLS 1.2 and
// 1.3, one session cache) — the share of its handshakes that resume.
func BenchmarkFleetResumption(b *testing.B) {
	f, _ := newFleet(b, "a", "b", "c")
	f.waitApplied(1, f.nodes...)
	waitTickets(b, f)
	leaf := f.d.client.TLS()
	for b.Loop() {
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			c := newClient(f.d, v, &leaf)
			resumed, total := 0, 300
			for i := range total {
				_, r, err := c.get(f.nodes[i%3].addr(b, "mutual"))
				if err != nil {
					b.Fatal(err)
				}
				if r {
					resumed++
				}
			}
			b.ReportMetric(float64(resumed)/float64(total)*100, fmt.Sprintf("resumed-%%-tls1%d", v-tls.VersionTLS10))
		}
	}
}

func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
