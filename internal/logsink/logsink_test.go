package logsink_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"tlsgate/internal/logsink"
)

// gate is an io.Writer whose first Write blocks until released, counting calls.
type gate struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	calls   int
	entered chan struct{}
	release chan struct{}
}

func (g *gate) Write(p []byte) (int, error) {
	g.mu.Lock()
	g.calls++
	first := g.calls == 1
	g.mu.Unlock()
	if first {
		close(g.entered)
		<-g.release
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.Write(p)
}

// TestCoalesces: lines written while the sink is busy go out together, none is lost or
// torn, and each writer's lines keep their order.
func TestCoalesces(t *testing.T) {
	g := &gate{entered: make(chan struct{}), release: make(chan struct{})}
	w := logsink.New(g)
	fmt.Fprintln(w, "first")
	<-g.entered // the sink is now inside its first write
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 250 {
				fmt.Fprintf(w, "w%d line %d\n", i, j)
			}
		})
	}
	wg.Wait()
	close(g.release)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(g.buf.String(), "\n"), "\n")
	if len(lines) != 1001 || lines[0] != "first" {
		t.Fatalf("%d lines, first %q; want 1001 starting with first", len(lines), lines[0])
	}
	next := [4]int{}
	for _, l := range lines[1:] {
		var i, j int
		if _, err := fmt.Sscanf(l, "w%d line %d", &i, &j); err != nil || j != next[i] {
			t.Fatalf("line %q out of order or torn (want w%d line %d)", l, i, next[i])
		}
		next[i]++
	}
	if g.calls > 3 {
		t.Fatalf("%d writes for 1001 lines, want them coalesced", g.calls)
	}
	// After Close, lines go straight through.
	fmt.Fprintln(w, "late")
	if !strings.HasSuffix(g.buf.String(), "late\n") {
		t.Fatal("write after Close was not written")
	}
}

// TestFlushWhileWriting: Flush called (a reopen per line, say) while lines are written
// and the sink's goroutine flushes too: every line arrives whole, once, in its
// writer's order.
func TestFlushWhileWriting(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	var mu sync.Mutex
	w := logsink.New(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return out.Write(p)
	}))
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 500 {
				fmt.Fprintf(w, "w%d line %d\n", i, j)
				if j%7 == 0 {
					w.Flush()
				}
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	next := [4]int{}
	for l := range strings.SplitSeq(strings.TrimSuffix(out.String(), "\n"), "\n") {
		var i, j int
		if _, err := fmt.Sscanf(l, "w%d line %d", &i, &j); err != nil || j != next[i] {
			t.Fatalf("line %q out of order or torn (want w%d line %d)", l, i, next[i])
		}
		next[i]++
	}
	if next != [4]int{500, 500, 500, 500} {
		t.Fatalf("lines per writer %v, want 500 each", next)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestQuietLineGoesOut: a single line reaches the file without Close.
func TestQuietLineGoesOut(t *testing.T) {
	r, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w := logsink.New(pw)
	defer w.Close()
	fmt.Fprintln(w, "hello")
	got := make([]byte, 6)
	if _, err := io.ReadFull(r, got); err != nil || string(got) != "hello\n" {
		t.Fatalf("read %q, %v", got, err)
	}
}

// TestFileReopen: after logrotate renames the file, Reopen sends the next lines to a new
// file under the old name; the renamed file keeps the earlier ones.
func TestFileReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "tlsgate.log")
	f, err := logsink.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("one\n")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("two\n")); err != nil { // still the renamed file
		t.Fatal(err)
	}
	if err := f.Reopen(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("three\n")); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{path + ".1": "one\ntwo\n", path: "three\n"} {
		got, err := os.ReadFile(name)
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
	// A path that cannot be opened keeps the old file in use.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := f.Reopen(); err == nil {
		t.Fatal("reopening onto a directory succeeded")
	}
	if _, err := f.Write([]byte("four\n")); err != nil {
		t.Fatalf("writing after a failed reopen: %v", err)
	}
}

func TestJSONHandlerLevel(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	log := slog.New(logsink.NewJSONHandlerLevel(&b, slog.LevelWarn))
	log.Info("hidden")
	log.Warn("shown")
	log.Debug("hidden too")
	if got := b.String(); strings.Contains(got, "hidden") || !strings.Contains(got, `"msg":"shown"`) {
		t.Errorf("level warn wrote %q", got)
	}
}

// recorder is an io.Writer keeping what each Write call got.
type recorder struct {
	mu     sync.Mutex
	writes []string
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.writes)
}

// TestFullBatchGoesOut: lines that fill a batch while the sink waits out its interval
// are written at once, a batch of at most BatchSize bytes a write, in order; the rest
// when the interval ends. (Before, all of them waited for the interval, in one write.)
func TestFullBatchGoesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		out := &recorder{}
		w := logsink.New(out)
		defer w.Close()
		fmt.Fprintln(w, "first")
		synctest.Wait() // written at once; the sink now waits out the interval
		const lineLen = 100
		perBatch := logsink.BatchSize / lineLen
		n := 2*perBatch + 1
		for i := range n {
			fmt.Fprintf(w, "%0*d\n", lineLen-1, i)
		}
		synctest.Wait() // no time has passed
		got := out.get()
		if len(got) != 3 {
			t.Fatalf("%d writes before the interval ended, want 3 (the first line, two full batches)", len(got))
		}
		time.Sleep(logsink.FlushInterval)
		synctest.Wait()
		got = out.get()
		if len(got) != 4 || got[0] != "first\n" {
			t.Fatalf("%d writes after the interval, want 4 starting with the first line", len(got))
		}
		next := 0
		for i, b := range got[1:] {
			if len(b) > logsink.BatchSize {
				t.Errorf("write %d has %d bytes, over BatchSize", i+1, len(b))
			}
			for l := range strings.SplitSeq(strings.TrimSuffix(b, "\n"), "\n") {
				if j, err := strconv.Atoi(l); err != nil || j != next || len(l) != lineLen-1 {
					t.Fatalf("write %d: line %q, want line %d", i+1, l, next)
				}
				next++
			}
		}
		if next != n {
			t.Fatalf("%d lines written, want %d", next, n)
		}
	})
}

// TestNoLineLeftBehind: however lines, batches and intervals interleave, every line is
// written within two intervals of the last one, without Close.
func TestNoLineLeftBehind(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		out := &recorder{}
		w := logsink.New(out)
		defer w.Close()
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				for j := range 400 {
					fmt.Fprintf(w, "w%d line %d %s\n", i, j, strings.Repeat("x", (i*j)%700))
					if (i+j)%(i+3) == 0 {
						time.Sleep(time.Duration((i*7+j)%23) * time.Millisecond / 2)
					}
				}
			})
		}
		wg.Wait()
		time.Sleep(2 * logsink.FlushInterval)
		synctest.Wait()
		next := [8]int{}
		for _, b := range out.get() {
			for l := range strings.SplitSeq(strings.TrimSuffix(b, "\n"), "\n") {
				var i, j int
				if _, err := fmt.Sscanf(l, "w%d line %d", &i, &j); err != nil || j != next[i] {
					t.Fatalf("line %q out of order or torn (want w%d line %d)", l, i, next[i])
				}
				next[i]++
			}
		}
		for i, n := range next {
			if n != 400 {
				t.Fatalf("writer %d: %d lines written before Close, want 400", i, n)
			}
		}
	})
}
