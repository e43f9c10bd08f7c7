package listener

import (
	"net/http"
	"sync"
	"testing"
)

// TestRequestIDs: made ids are 32 lower-case hex digits and do not repeat, across
// batches and goroutines; a client's id is replaced unless the connection is trusted.
func TestRequestIDs(t *testing.T) {
	const goroutines, each = 4, 3 * idBatch
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			got := make([]string, 0, each)
			for range each {
				r := &http.Request{Header: http.Header{HeaderRequestID: {"client-chosen"}}}
				id := requestID(r, false, nil)
				if v := r.Header[HeaderRequestID]; len(v) != 1 || v[0] != id {
					t.Errorf("header %q, want [%s]", v, id)
				}
				got = append(got, id)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range got {
				if seen[id] {
					t.Errorf("id %s made twice", id)
				}
				seen[id] = true
			}
		})
	}
	wg.Wait()
	for id := range seen {
		if len(id) != 32 || !allHex(id) {
			t.Fatalf("id %q is not 32 lower-case hex digits", id)
		}
	}
	if len(seen) != goroutines*each {
		t.Errorf("%d distinct ids, want %d", len(seen), goroutines*each)
	}
	r := &http.Request{Header: http.Header{HeaderRequestID: {"front-1"}}}
	if id := requestID(r, true, nil); id != "front-1" {
		t.Errorf("trusted front's id replaced by %q", id)
	}
}

func allHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
