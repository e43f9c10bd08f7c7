package tcpproxy

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

// TestCopyAdaptive: every byte arrives in order whether reads are tiny, full or mixed
// (the buffer switches between small and big), and errors surface.
func TestCopyAdaptive(t *testing.T) {
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, tc := range []struct {
		name string
		src  io.Reader
	}{
		{"bulk", bytes.NewReader(data)},
		{"one byte at a time", iotest.OneByteReader(bytes.NewReader(data[:10000]))},
		{"half reads", iotest.HalfReader(bytes.NewReader(data))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			n, err := copyAdaptive(&out, tc.src, func() {})
			want := data
			if tc.name == "one byte at a time" {
				want = data[:10000]
			}
			if err != nil || n != int64(len(want)) || !bytes.Equal(out.Bytes(), want) {
				t.Fatalf("n=%d err=%v equal=%v", n, err, bytes.Equal(out.Bytes(), want))
			}
		})
	}
	if _, err := copyAdaptive(io.Discard, iotest.ErrReader(io.ErrUnexpectedEOF), func() {}); err != io.ErrUnexpectedEOF {
		t.Fatalf("error %v", err)
	}
}
