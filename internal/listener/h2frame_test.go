package listener

import (
	"bytes"
	"testing"
	"time"
)

// frames is two frames as a server writes them: a 9-byte SETTINGS ACK and a DATA frame
// of 5 bytes on stream 1.
var frames = []byte{0, 0, 0, frameSettings, flagAck, 0, 0, 0, 0, 0, 0, 5, frameData, 0, 0, 0, 0, 1, 'h', 'e', 'l', 'l', 'o'}

// TestFrameScan: headers and ends are reported whatever the pieces the bytes come in,
// and toBoundary finds where the frame in progress ends.
func TestFrameScan(t *testing.T) {
	t.Parallel()
	for n := 1; n <= len(frames); n++ {
		var f frameScan
		var heads, ends []frameHeader
		for b := frames; len(b) > 0; {
			k := min(n, len(b))
			_ = f.feed(b[:k], func(h frameHeader) error { heads = append(heads, h); return nil },
				func(h frameHeader) error { ends = append(ends, h); return nil })
			b = b[k:]
		}
		if len(heads) != 2 || len(ends) != 2 || heads[1] != (frameHeader{length: 5, typ: frameData, stream: 1}) || !f.atBoundary() {
			t.Fatalf("pieces of %d: heads %v, ends %v", n, heads, ends)
		}
	}
	for cut := range len(frames) {
		var f frameScan
		_ = f.feed(frames[:cut], nil, nil)
		want := 0
		switch {
		case cut > 0 && cut < 9:
			want = 9 - cut
		case cut > 9:
			want = len(frames) - cut
		}
		if got := f.toBoundary(frames[cut:]); got != want {
			t.Fatalf("after %d bytes: toBoundary %d, want %d", cut, got, want)
		}
	}
}

func TestGoAway(t *testing.T) {
	t.Parallel()
	want := []byte{0, 0, 8, frameGoAway, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, codeEnhanceYourCalm}
	if got := goAway(7, codeEnhanceYourCalm); !bytes.Equal(got, want) {
		t.Fatalf("% x, want % x", got, want)
	}
}

// TestBucket: a burst, then one token per 1/rate seconds.
func TestBucket(t *testing.T) {
	t.Parallel()
	spec := bucketSpec{burst: 3, rate: 2}
	var b bucket
	now := time.Unix(1000, 0)
	for i := range 3 {
		if !b.take(spec, now) {
			t.Fatalf("token %d of the burst refused", i)
		}
	}
	if b.take(spec, now) {
		t.Fatal("a fourth token at once")
	}
	if !b.take(spec, now.Add(500*time.Millisecond)) || b.take(spec, now.Add(500*time.Millisecond)) {
		t.Fatal("want exactly one token back after 1/rate")
	}
	if n := func() (n int) {
		for b.take(spec, now.Add(time.Hour)) {
			n++
		}
		return n
	}(); n != 3 {
		t.Fatalf("%d tokens after a long pause, want the burst (3)", n)
	}
}
