package logsink_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"tlsgate/internal/logsink"
)

// slogValue is what slog's JSON handler writes for the value of a.
func slogValue(t *testing.T, a slog.Attr) string {
	t.Helper()
	var w bytes.Buffer
	h := slog.NewJSONHandler(&w, &slog.HandlerOptions{ReplaceAttr: func(_ []string, x slog.Attr) slog.Attr {
		if len(x.Key) > 0 && x.Key != a.Key {
			return slog.Attr{}
		}
		return x
	}})
	r := slog.NewRecord(time.Time{}, 0, "", 0)
	r.AddAttrs(a)
	if err := h.Handle(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSuffix(w.String(), "}\n")
	_, v, ok := strings.Cut(line, `"`+a.Key+`":`)
	if !ok {
		t.Fatalf("no %s in %s", a.Key, w.String())
	}
	return v
}

// TestAppendString: every string is quoted as slog quotes it, wherever the bytes that
// need escaping sit relative to the eight-byte steps of the fast path.
func TestAppendString(t *testing.T) {
	t.Parallel()
	special := []string{"\"", "\\", "\x00", "\x1f", "\n", "\x7f", "\x80", "\xff", "é", "\u2028", "\u2029", "日", "\xe2\x80", " ", "~", "<", "&"}
	rng := rand.New(rand.NewPCG(3, 4))
	check := func(s string) {
		t.Helper()
		got := string(logsink.AppendString([]byte("x"), s))
		if want := "x" + slogValue(t, slog.String("k", s)); got != want {
			t.Fatalf("AppendString(%q) = %s, want %s", s, got, want)
		}
	}
	for n := range 40 {
		clean := strings.Repeat("a", n)
		check(clean)
		for i := 0; i <= n; i++ {
			for _, sp := range special {
				check(clean[:i] + sp + clean[i:])
			}
		}
	}
	for range 10000 {
		var sb strings.Builder
		for range rng.IntN(40) {
			if rng.IntN(6) == 0 {
				sb.WriteString(special[rng.IntN(len(special))])
			} else {
				sb.WriteByte(byte(0x20 + rng.IntN(0x5f)))
			}
		}
		check(sb.String())
	}
	for c := range 256 { // each byte value at each of the eight positions
		for i := range 9 {
			check(strings.Repeat("b", i) + string([]byte{byte(c)}) + strings.Repeat("c", 15-i))
		}
		for n := 1; n < 8; n++ { // and at each position of the short strings
			for i := range n {
				check(strings.Repeat("b", i) + string([]byte{byte(c)}) + strings.Repeat("c", n-1-i))
			}
		}
	}
}

// TestAppendInt: numbers are written as strconv writes them, around each of the fast
// path's digit counts and past it.
func TestAppendInt(t *testing.T) {
	t.Parallel()
	vals := []int64{-1 << 63, -10000, -1, 1 << 62, 1<<63 - 1}
	for v := range int64(20001) {
		vals = append(vals, v)
	}
	for _, v := range vals {
		if got, want := string(logsink.AppendInt([]byte("x"), v)), "x"+strconv.FormatInt(v, 10); got != want {
			t.Fatalf("AppendInt(%d) = %s, want %s", v, got, want)
		}
	}
}

// TestAppendMillis: a duration is written as slog writes the float64 of its
// milliseconds (what the line logged before), from 0 to days, and past the fast path.
func TestAppendMillis(t *testing.T) {
	t.Parallel()
	check := func(d time.Duration) {
		t.Helper()
		got := string(logsink.AppendMillis(nil, d))
		if want := slogValue(t, slog.Float64("k", float64(d.Microseconds())/1000)); got != want {
			t.Fatalf("AppendMillis(%v) = %s, want %s", d, got, want)
		}
		var f float64
		if err := json.Unmarshal([]byte(got), &f); err != nil {
			t.Fatalf("%s: %v", got, err)
		}
	}
	for us := range int64(30000) {
		check(time.Duration(us) * time.Microsecond)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 30000 {
		check(time.Duration(rng.Int64N(1 << (10 + rng.IntN(53)))))
	}
	for _, d := range []time.Duration{-1, -999, -1000, -1500 * time.Microsecond, 1e12*time.Microsecond - 1000, 1e12 * time.Microsecond, 1e12*time.Microsecond + 1000, 1 << 62, -1 << 63, 1<<63 - 1, 999, 1000, 1001} {
		check(d)
	}
}

// TestAppendTime: times are written as RFC3339Nano writes them, in UTC, in fixed
// zones (seconds in the offset included) and across daylight-saving changes, with the
// cached second changing under concurrent lines.
func TestAppendTime(t *testing.T) {
	t.Parallel()
	zones := []*time.Location{time.UTC, time.Local, time.FixedZone("a", 3600), time.FixedZone("b", -5*3600-30*60), time.FixedZone("c", 20), time.FixedZone("d", -20)}
	if berlin, err := time.LoadLocation("Europe/Berlin"); err == nil {
		zones = append(zones, berlin)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	base := time.Date(2026, 3, 29, 0, 59, 58, 0, time.UTC) // Berlin changes at 01:00 UTC
	for i := range 50000 {
		tm := base.Add(time.Duration(rng.Int64N(int64(5 * time.Second))))
		switch i % 4 {
		case 1:
			tm = tm.Truncate(time.Second)
		case 2:
			tm = tm.Truncate(time.Millisecond)
		case 3:
			tm = time.Unix(rng.Int64N(250000000000)-62135596800, rng.Int64N(1e9))
		}
		tm = tm.In(zones[rng.IntN(len(zones))])
		if got, want := string(logsink.AppendTime(nil, tm)), tm.Format(time.RFC3339Nano); got != want {
			t.Fatalf("AppendTime(%v) = %s, want %s", tm, got, want)
		}
	}
	now := time.Now() // with its monotonic reading, as the lines' times have
	if got, want := string(logsink.AppendTime(nil, now)), now.Format(time.RFC3339Nano); got != want {
		t.Fatalf("AppendTime(now) = %s, want %s", got, want)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				tm := base.Add(time.Duration(i*g) * 7 * time.Millisecond).In(zones[(i+g)%len(zones)])
				if got, want := string(logsink.AppendTime(nil, tm)), tm.Format(time.RFC3339Nano); got != want {
					t.Errorf("AppendTime(%v) = %s, want %s", tm, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}
