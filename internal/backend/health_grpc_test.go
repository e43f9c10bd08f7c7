package backend

import (
	"net/http"
	"testing"
)

// TestGRPCHealthAnswer: only grpc-status 0 with SERVING passes; the status field is
// found among other fields.
func TestGRPCHealthAnswer(t *testing.T) {
	ok := &http.Response{StatusCode: 200, Header: http.Header{}, Trailer: http.Header{"Grpc-Status": {"0"}}}
	for _, tc := range []struct {
		name  string
		resp  *http.Response
		frame []byte
		pass  bool
	}{
		{"serving", ok, grpcFrame([]byte{0x08, 0x01}), true},
		{"serving after another field", ok, grpcFrame([]byte{0x12, 0x01, 'x', 0x08, 0x01}), true},
		{"not serving", ok, grpcFrame([]byte{0x08, 0x02}), false},
		{"empty message (UNKNOWN)", ok, grpcFrame(nil), false},
		{"truncated", ok, []byte{0, 0, 0, 0, 9, 0x08}, false},
		{"grpc error", &http.Response{StatusCode: 200, Header: http.Header{"Grpc-Status": {"5"}}, Trailer: http.Header{}}, nil, false},
		{"http error", &http.Response{StatusCode: 503, Header: http.Header{}, Trailer: http.Header{}}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := grpcHealth(tc.resp, tc.frame); (err == nil) != tc.pass {
				t.Fatalf("error %v, want pass %v", err, tc.pass)
			}
		})
	}
}

// FuzzProtoVarint: no message makes the field reader panic or loop.
func FuzzProtoVarint(f *testing.F) {
	f.Add([]byte{0x08, 0x01})
	f.Add([]byte{0x12, 0x05, 'a'})
	f.Add([]byte{0x0d, 1, 2})
	f.Fuzz(func(t *testing.T, msg []byte) { protoVarint(msg, 1) })
}
