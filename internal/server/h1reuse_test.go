package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"tlsgate/internal/pki"
)

// TestH1RequestHeaderNotCarriedOver: the header maps of requests the fast path reads
// are reused once a request is served: a field of one request must not reach the
// backend with the next request on the connection (or on another one).
func TestH1RequestHeaderNotCarriedOver(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	h := dialH1(t, e, "one_way")
	reqs := []string{
		"GET /1 HTTP/1.1\r\nHost: localhost\r\nX-One: 1\r\nX-Two: 2\r\n\r\n",
		"GET /2 HTTP/1.1\r\nHost: localhost\r\n\r\n",
		"GET /3 HTTP/1.1\r\nHost: localhost\r\nX-Three: 3\r\n\r\n",
	}
	for i, raw := range reqs {
		h.send(raw)
		resp, err := http.ReadResponse(h.br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Headers map[string]string `json:"headers"`
		}
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("request %d: %v in %q", i+1, err, b)
		}
		for k, want := range map[string]bool{"X-One": i == 0, "X-Two": i == 0, "X-Three": i == 2} {
			if _, ok := got.Headers[k]; ok != want {
				t.Fatalf("request %d: the backend saw %s: %v, want %v (%v)", i+1, k, ok, want, got.Headers)
			}
		}
	}
}
