package tcpproxy

import (
	"io"
	"slices"
	"testing"
	"time"
)

// BenchmarkRelayRoundTrip: one small request and a 1 KiB answer through a TLS relay
// (the harness's keep-alive TCP SSL point, in one process): reports the slowest round
// trip too, for stalls.
func BenchmarkRelayRoundTrip(b *testing.B) {
	client, backend, start := directRelay(b, true, time.Minute)
	start()
	answer := make([]byte, 1024)
	go func() {
		buf := make([]byte, 512)
		for {
			if _, err := backend.Read(buf); err != nil {
				return
			}
			if _, err := backend.Write(answer); err != nil {
				return
			}
		}
	}()
	req := make([]byte, 80)
	got := make([]byte, len(answer))
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if _, err := client.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(client, got); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
}
