package listener

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"net/http"
	"strings"
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
				id, ids := requestID(r, false, nil)
				if v := r.Header[HeaderRequestID]; len(v) != 1 || v[0] != id || len(ids) != 1 || &ids[0] != &v[0] {
					t.Errorf("header %q, returned %q, want [%s], the header's slice", v, ids, id)
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
	if id, ids := requestID(r, true, nil); id != "front-1" || len(ids) != 1 || &ids[0] != &r.Header[HeaderRequestID][0] {
		t.Errorf("trusted front's id replaced by %q (returned %q)", id, ids)
	}
}

// TestRequestIDHex: a batch's ids are its key stream's bytes in encoding/hex's digits,
// across batches, and the table spells every byte value as hex.Encode does.
func TestRequestIDHex(t *testing.T) {
	b, err := aes.NewCipher([]byte("0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	iv := []byte("fedcba9876543210")
	s := &idSource{ctr: cipher.NewCTR(b, iv)}
	raw := make([]byte, 3*idBatch*16)
	cipher.NewCTR(b, iv).XORKeyStream(raw, raw)
	var got strings.Builder
	for range 3 * idBatch {
		got.WriteString(s.next())
	}
	if want := hex.EncodeToString(raw); got.String() != want {
		t.Errorf("ids %.64s…, want %.64s…", got.String(), want)
	}
	var every [idBatch * 16]byte
	for i := range every {
		every[i] = byte(i)
	}
	var dst [idBatch * 32]byte
	encodeHex(&dst, &every)
	if want := hex.EncodeToString(every[:]); string(dst[:]) != want {
		t.Errorf("every byte value: %q, want %q", dst[:], want)
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

// BenchmarkRequestID: one made id (a 64th of a batch's key stream and hex digits).
func BenchmarkRequestID(b *testing.B) {
	for b.Loop() {
		_ = requestIDs.next()
	}
}
