package ticketkeys

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// der is a DER SEQUENCE of n content bytes drawn from r: short form below 128, else one
// to three length bytes.
func der(r *rand.Rand, n int) []byte {
	var b []byte
	switch {
	case n < 0x80:
		b = []byte{0x30, byte(n)}
	case n < 0x100:
		b = []byte{0x30, 0x81, byte(n)}
	case n < 0x10000:
		b = []byte{0x30, 0x82, byte(n >> 8), byte(n)}
	default:
		b = []byte{0x30, 0x83, byte(n >> 16), byte(n >> 8), byte(n)}
	}
	for range n {
		b = append(b, byte(r.Uint32()))
	}
	return b
}

// checkRoundTrip elides state, restores it, and holds the result to state; planted is
// how many bundle bytes state is known to hold outside any other match, so at least that
// many minus the references' cost must be saved.
func checkRoundTrip(t *testing.T, e *elider, state []byte, planted, refs int) {
	t.Helper()
	p := e.elide(state)
	got, ok := e.restore(p)
	if !ok || !bytes.Equal(got, state) {
		t.Fatalf("restore(elide(%x)) = %x, %v", state, got, ok)
	}
	if max := len(state) - planted + binary.MaxVarintLen64 + 2*binary.MaxVarintLen64*refs; len(p) > max {
		t.Fatalf("elided %d bytes to %d, want at most %d (%d planted in %d places)", len(state), len(p), max, planted, refs)
	}
}

// TestElideTable: planted certificates are elided and restored exactly, alone, back to
// back, nested, truncated at the end, among look-alike headers and reference-like bytes.
func TestElideTable(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	a, b, c := der(r, 300), der(r, 300), der(r, 40) // a and b share a length
	inner := der(r, 20)
	outer := append([]byte{0x30, byte(len(inner) + 3), 1, 2, 3}, inner...) // holds inner whole
	e := newElider([][]byte{a, b, c, inner, outer})
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, tc := range []struct {
		name          string
		state         []byte
		planted, refs int
	}{
		{"empty", nil, 0, 0},
		{"no certificate", []byte("\x00\x01\x30\x82\x01\x2c plain"), 0, 0},
		{"alone", a, len(a), 1},
		{"in the middle", cat([]byte{1, 2, 3}, b, []byte{4}), len(b), 1},
		{"back to back", cat(a, b, c, a), 2*len(a) + len(b) + len(c), 4},
		{"same length, other content", cat(a[:len(a)-1], []byte{^a[len(a)-1]}, b), len(b), 1},
		{"truncated at the end", cat(c, a[:len(a)-1]), len(c), 1},
		{"header of a, then b", cat(a[:4], b), len(b), 1},
		{"nested: the outer one wins", cat(outer, inner), len(outer) + len(inner), 2},
		{"reference-like bytes first", cat([]byte{2, 0, 1, 5, 0}, c, []byte{0x30}), len(c), 1},
		{"only reference-like bytes", []byte{3, 0, 0, 0, 1, 0, 2}, 0, 0},
		{"a long-form look-alike", []byte{0x30, 0x83, 0xff, 0xff, 0xff, 0x30, 0x84, 1, 2, 3, 4}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) { checkRoundTrip(t, e, tc.state, tc.planted, tc.refs) })
	}
}

// TestElideRandom: random states with bundle certificates planted at random places
// (some adjacent, some cut short) restore exactly, and every whole one is elided.
func TestElideRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 2000 {
		bundle := make([][]byte, 1+r.IntN(4))
		for j := range bundle {
			bundle[j] = der(r, 6+r.IntN([]int{100, 300, 1200, 70000}[r.IntN(4)]))
		}
		e := newElider(bundle)
		var state []byte
		planted, refs := 0, 0
		for range r.IntN(8) {
			filler := make([]byte, []int{0, 1, r.IntN(64)}[r.IntN(3)])
			for k := range filler {
				filler[k] = []byte{0, 1, 2, 0x30, 0x80, 0x81, 0x82, byte(r.Uint32())}[r.IntN(8)]
			}
			state = append(state, filler...)
			d := bundle[r.IntN(len(bundle))]
			if r.IntN(5) == 0 {
				state = append(state, d[:r.IntN(len(d))]...) // cut short: not a match
				continue
			}
			state = append(state, d...)
			planted += len(d)
			refs++
		}
		func() {
			defer func() {
				if t.Failed() {
					t.Logf("iteration %d", i)
				}
			}()
			checkRoundTrip(t, e, state, planted, refs)
		}()
	}
}

// TestRestoreRefuses: references out of the bundle and broken framing do not restore.
func TestRestoreRefuses(t *testing.T) {
	e := newElider([][]byte{{0x30, 1, 9}, {0x30, 2, 8, 8}})
	for _, tc := range []struct {
		name string
		p    []byte
	}{
		{"empty", nil},
		{"index out of range", []byte{1, 0, 2, 'x'}},
		{"gap past the end", []byte{1, 5, 0, 'x'}},
		{"more references than bytes", []byte{3, 0, 0}},
		{"truncated varint", []byte{0x80}},
		{"non-minimal varint", []byte{0x81, 0x00, 0, 0}},
		{"huge count", []byte{0xff, 0xff, 0xff, 0xff, 0x0f}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, ok := e.restore(tc.p); ok {
				t.Fatalf("restored %x", got)
			}
		})
	}
	if got, ok := e.restore([]byte{2, 1, 1, 0, 0, 'a', 'b'}); !ok || !bytes.Equal(got, []byte{'a', 0x30, 2, 8, 8, 0x30, 1, 9, 'b'}) {
		t.Fatalf("a valid elision restored to %x, %v", got, ok)
	}
}

// FuzzElide: any state restores exactly, with or without the bundle's certificates
// (the seeds plant them); restore never panics on any input.
func FuzzElide(f *testing.F) {
	r := rand.New(rand.NewPCG(5, 6))
	bundle := [][]byte{der(r, 10), der(r, 200), der(r, 200)}
	e := newElider(bundle)
	f.Add([]byte("plain"))
	f.Add(bytes.Join([][]byte{{1}, bundle[0], bundle[1], {0x30, 0x82}, bundle[2]}, nil))
	f.Add([]byte{1, 0, 0, 0x30, 0x08})
	f.Fuzz(func(t *testing.T, state []byte) {
		got, ok := e.restore(e.elide(state))
		if !ok || !bytes.Equal(got, state) {
			t.Fatalf("restore(elide(%x)) = %x, %v", state, got, ok)
		}
		e.restore(state)
	})
}

// BenchmarkElide: a mutual ECDSA state's size (a 455-byte leaf, then its 465-byte CA
// among the state's other bytes), elided and restored.
func BenchmarkElide(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	ca := der(r, 461)
	state := bytes.Join([][]byte{make([]byte, 60), der(r, 451), {0, 1, 0xc9, 0, 1, 0xc6}, ca, {0, 0x1d}}, nil)
	e := newElider([][]byte{ca})
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := e.restore(e.elide(state)); !ok {
			b.Fatal("did not restore")
		}
	}
}
