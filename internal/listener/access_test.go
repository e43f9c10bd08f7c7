package listener

import (
	"errors"
	"testing"

	"tlsgate/internal/clientauth"
)

func TestAccessKeep(t *testing.T) {
	t.Parallel()
	ok := &Line{Msg: "request", Status: 200}
	failures := []*Line{
		{Msg: "request", Status: 502},
		{Msg: "request", Status: 403, Reason: clientauth.NotAllowed},
		{Msg: "connection", Err: errors.New("dial")},
		{Msg: "handshake", Verify: "FAILED"},
		{Msg: "connection", Verify: "FAILED:revoked"},
	}
	for _, tc := range []struct {
		name           string
		a              Access
		okKept, failed int // of 1000 each
	}{
		{"all", Access{}, 1000, 1000},
		{"errors", Access{Skip: 1}, 0, 1000},
		{"off", Access{Skip: 1, Off: true}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, f := 0, 0
			for i := range 1000 {
				if tc.a.keep(ok) {
					n++
				}
				if tc.a.keep(failures[i%len(failures)]) {
					f++
				}
			}
			if n != tc.okKept || f != tc.failed {
				t.Errorf("kept %d ok and %d failed lines of 1000; want %d and %d", n, f, tc.okKept, tc.failed)
			}
		})
	}
	// A sample rate of 0.1 keeps about a tenth of the ordinary lines and every failure.
	a, n := Access{Skip: 0.9}, 0
	for range 10000 {
		if a.keep(ok) {
			n++
		}
		if !a.keep(failures[0]) {
			t.Fatal("a sampled-out failure")
		}
	}
	if n < 700 || n > 1300 {
		t.Errorf("sample 0.1 kept %d of 10000", n)
	}
}
