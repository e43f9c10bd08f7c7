package logsink_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"tlsgate/internal/logsink"
)

// strs holds what certificate subjects and errors can carry: quotes, backslashes,
// control bytes, HTML characters, non-ASCII, invalid UTF-8 and the JavaScript line
// separators.
var strs = []string{"", "plain", `q"uo\te`, "a\nb\rc\td\x00e\x1f\x7f", "<script>&amp;", "Ünïcödé ✓ 日本",
	"bad\xffutf8\xc3", "sep\u2028par\u2029", "CN=evil\", Hash=forged;By=x=y\r\nX-Client-Verify: SUCCESS"}

var floats = []float64{0, 1, -1, 0.5, 1.25, 123.456, 1e-7, 1.5e-9, -2e-12, 1e20, 1e21, 3.2e25, math.MaxFloat64, math.SmallestNonzeroFloat64, 0.000001, 12.345}

// TestJSONMatchesSlog: for records of every kind the proxy logs, the handler writes
// byte for byte what slog's JSON handler writes.
func TestJSONMatchesSlog(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var fast, std bytes.Buffer
	hf, hs := logsink.NewJSONHandler(&fast), slog.NewJSONHandler(&std, nil)
	at := time.Date(2026, 11, 22, 22, 50, 1, 123456789, time.FixedZone("x", 3600))
	for i := range 2000 {
		r := slog.NewRecord(at.Add(time.Duration(i)*time.Microsecond), []slog.Level{slog.LevelInfo, slog.LevelWarn, slog.LevelError}[i%3], strs[i%len(strs)], 0)
		for range rng.IntN(8) {
			key := strs[rng.IntN(len(strs)-1)+1]
			switch rng.IntN(7) {
			case 0:
				r.AddAttrs(slog.String(key, strs[rng.IntN(len(strs))]))
			case 1:
				r.AddAttrs(slog.Int64(key, rng.Int64()-math.MaxInt64/2))
			case 2:
				r.AddAttrs(slog.Uint64(key, rng.Uint64()))
			case 3:
				r.AddAttrs(slog.Bool(key, rng.IntN(2) == 0))
			case 4:
				r.AddAttrs(slog.Float64(key, floats[rng.IntN(len(floats))]*float64(rng.IntN(3)-1)))
			case 5:
				r.AddAttrs(slog.Duration(key, time.Duration(rng.Int64N(1e12))))
			case 6:
				r.AddAttrs(slog.Time(key, at.Add(-time.Duration(rng.Int64N(1e15)))))
			}
		}
		fast.Reset()
		std.Reset()
		if err := hf.Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if err := hs.Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if fast.String() != std.String() {
			t.Fatalf("record %d:\n fast %s\n slog %s", i, fast.String(), std.String())
		}
		// The same record with its attributes encoded by the caller.
		var fields []byte
		r.Attrs(func(a slog.Attr) bool { fields = logsink.AppendAttr(fields, a); return true })
		fast.Reset()
		if err := writeJSON(hf.(logsink.JSONLineHandler), r.Time, r.Level, r.Message, fields); err != nil {
			t.Fatal(err)
		}
		if fast.String() != std.String() {
			t.Fatalf("record %d encoded by the caller:\n fast %s\n slog %s", i, fast.String(), std.String())
		}
	}
}

// writeJSON writes a record whose attributes are encoded in fields, as the access
// line does.
func writeJSON(h logsink.JSONLineHandler, t time.Time, level slog.Level, msg string, fields []byte) error {
	b := h.AppendHead(nil, t, level, msg)
	_, err := h.WriteLine(append(b, fields...))
	return err
}

// TestJSONBadYear: a time slog cannot write as RFC 3339 is written as slog writes it,
// the caller's encoded fields included, also right after a line in a valid year.
func TestJSONBadYear(t *testing.T) {
	fields := logsink.AppendAttr(nil, slog.String("k", "v"))
	for _, at := range []time.Time{time.Date(10000, 1, 1, 0, 0, 0, 5, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)} {
		var fast, std bytes.Buffer
		hf := logsink.NewJSONHandler(&fast).(logsink.JSONLineHandler)
		if err := writeJSON(hf, time.Now(), slog.LevelInfo, "ok", nil); err != nil {
			t.Fatal(err)
		}
		fast.Reset()
		if err := writeJSON(hf, at, slog.LevelInfo, "m", fields); err != nil {
			t.Fatal(err)
		}
		r := slog.NewRecord(at, slog.LevelInfo, "m", 0)
		r.AddAttrs(slog.String("k", "v"))
		if err := slog.NewJSONHandler(&std, nil).Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if fast.String() != std.String() {
			t.Errorf("year %d:\n fast %s\n slog %s", at.Year(), fast.String(), std.String())
		}
	}
}

// TestJSONFallsBack: what the handler does not encode itself (groups, Any values, NaN,
// WithAttrs) is still written as slog writes it.
func TestJSONFallsBack(t *testing.T) {
	var fast, std bytes.Buffer
	lf, ls := slog.New(logsink.NewJSONHandler(&fast)), slog.New(slog.NewJSONHandler(&std, nil))
	for _, l := range []*slog.Logger{lf, ls} {
		l.Info("group", slog.Group("g", slog.String("a", "b")), slog.Int("n", 1))
		l.Warn("any", "err", errors.New("boom"), "list", []int{1, 2})
		l.Info("nan", "f", math.NaN())
		l.With("listener", "web").Info("with", "k", "v")
		l.WithGroup("grp").Info("in group", "k", "v")
		l.Debug("below the level")
	}
	clean := func(s string) string { // times differ between the two loggers' calls
		var out []string
		for line := range strings.SplitSeq(s, "\n") {
			if i := strings.Index(line, `"level"`); i > 0 {
				line = line[i:]
			}
			out = append(out, line)
		}
		return strings.Join(out, "\n")
	}
	if got, want := clean(fast.String()), clean(std.String()); got != want {
		t.Fatalf("fast:\n%s\nslog:\n%s", got, want)
	}
}
