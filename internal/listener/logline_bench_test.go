//go:build unix

package listener

import (
	"context"
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"tlsgate/internal/logsink"
)

// BenchmarkAccessLine: one keep-alive request's line (log.format json).
//
//   - encode: through the JSON handler to nothing: what building the line costs.
//   - file: through the handler and the buffered writer serve uses, to a file. Its
//     ns/op is paced by the writer (1 MiB a 10 ms flush), so cpu-ns/op, the process's
//     user and system CPU per line (both goroutines, the write(2)s included), is the
//     figure to read.
func BenchmarkAccessLine(b *testing.B) {
	b.Run("encode", func(b *testing.B) { benchLine(b, slog.New(logsink.NewJSONHandler(io.Discard))) })
	b.Run("file", func(b *testing.B) {
		f, err := logsink.OpenFile(b.TempDir() + "/access.log")
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		w := logsink.New(f)
		defer w.Close()
		benchLine(b, slog.New(logsink.NewJSONHandler(w)))
	})
}

func benchLine(b *testing.B, log *slog.Logger) {
	line := requestLine()
	line.conn = new(connJSON) // as setTLS gives an HTTPS connection's lines
	ctx := context.Background()
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		line.Log(ctx, log)
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
