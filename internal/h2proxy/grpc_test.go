package h2proxy

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseTimeout(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"100m", 100 * time.Millisecond, true},
		{"1S", time.Second, true},
		{"5M", 5 * time.Minute, true},
		{"2H", 2 * time.Hour, true},
		{"250u", 250 * time.Microsecond, true},
		{"7n", 7, true},
		{"99999999H", maxTimeout, true},
		{"", 0, false},
		{"m", 0, false},
		{"100", 0, false},
		{"100x", 0, false},
		{"123456789S", 0, false}, // nine digits
		{"-1S", 0, false},
		{"+1S", 0, false},
	} {
		d, ok := ParseTimeout(tc.in)
		if d != tc.want || ok != tc.ok {
			t.Errorf("ParseTimeout(%q) = %v, %v; want %v, %v", tc.in, d, ok, tc.want, tc.ok)
		}
	}
}

// FuzzParseTimeout: no header value panics or gives a negative or unbounded timeout.
func FuzzParseTimeout(f *testing.F) {
	for _, s := range []string{"100m", "1S", "99999999H", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, ok := ParseTimeout(s); ok && (d < 0 || d > maxTimeout) {
			t.Fatalf("ParseTimeout(%q) = %v", s, d)
		}
	})
}

func TestEncodeMessage(t *testing.T) {
	if got := EncodeMessage("ok: 100% \"ü\"\n"); got != `ok: 100%25 "%C3%BC"%0A` {
		t.Fatalf("got %q", got)
	}
}

func TestIsGRPC(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/grpc": true, "application/grpc+proto": true, "application/grpc;charset=x": true,
		"application/grpc-web": false, "application/grpcx": false, "text/html": false, "": false,
	} {
		r := &http.Request{Header: http.Header{"Content-Type": {ct}}}
		if IsGRPC(r) != want {
			t.Errorf("IsGRPC(%q) = %v", ct, !want)
		}
	}
	// As Header.Get: the first value counts; none, or no header, is not gRPC.
	for _, h := range []http.Header{
		nil, {}, {"Content-Type": {}}, {"Content-Type": {"text/html", "application/grpc"}},
		{"Content-Type": {"application/grpc", "text/html"}},
	} {
		r := &http.Request{Header: h}
		want := strings.HasPrefix(h.Get("Content-Type"), "application/grpc")
		if IsGRPC(r) != want {
			t.Errorf("IsGRPC with header %v = %v, want %v as Header.Get has it", h, !want, want)
		}
	}
}
