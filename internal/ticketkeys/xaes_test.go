package ticketkeys

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"testing"
)

// TestXAESVectors holds xaes to the specification's test vectors
// (c2sp.org/XAES-256-GCM).
func TestXAESVectors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		key       byte
		aad, want string
	}{
		{"no additional data", 0x01, "", "ce546ef63c9cc60765923609" + "b33a9a1974e96e52daf2fcf7075e2271"},
		{"additional data", 0x03, "c2sp.org/XAES-256-GCM", "986ec1832593df5443a17943" + "7fd083bf3fdb41abd740a21f71eb769d"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := newXAES([32]byte(bytes.Repeat([]byte{tc.key}, 32)))
			nonce := []byte("ABCDEFGHIJKLMNOPQRSTUVWX")
			g, err := x.aead(nonce[:12])
			if err != nil {
				t.Fatal(err)
			}
			got := hex.EncodeToString(g.Seal(nil, nonce[12:], []byte("XAES-256-GCM"), []byte(tc.aad)))
			if got != tc.want {
				t.Fatalf("sealed %s, want %s", got, tc.want)
			}
			sealed, _ := hex.DecodeString(tc.want)
			pt, ok := x.open(append(nonce, sealed...), []byte(tc.aad))
			if !ok || string(pt) != "XAES-256-GCM" {
				t.Fatalf("open = %q, %v", pt, ok)
			}
		})
	}
}

// TestXAESRefuses: a ticket changed anywhere, cut short, or sealed under another key
// does not open.
func TestXAESRefuses(t *testing.T) {
	x, other := newXAES([32]byte{1}), newXAES([32]byte{2})
	sealed, err := x.seal([]byte("session state"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if pt, ok := x.open(sealed, nil); !ok || string(pt) != "session state" {
		t.Fatalf("own ticket: %q, %v", pt, ok)
	}
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x80
		if _, ok := x.open(bad, nil); ok {
			t.Fatalf("a ticket with byte %d flipped opened", i)
		}
	}
	for _, bad := range [][]byte{nil, sealed[:xaesOverhead-1], sealed[:len(sealed)-1]} {
		if _, ok := x.open(bad, nil); ok {
			t.Fatalf("a %d-byte ticket opened", len(bad))
		}
	}
	if _, ok := other.open(sealed, nil); ok {
		t.Fatal("a ticket opened under another key")
	}
}

// BenchmarkXAESTicket seals and opens a 1,050-byte state, the size of a resumed mutual
// session's (client leaf and CA, ECDSA P-256).
func BenchmarkXAESTicket(b *testing.B) {
	x := newXAES([32]byte{1})
	state := make([]byte, 1050)
	b.ReportAllocs()
	for b.Loop() {
		s, _ := x.seal(state, nil)
		if _, ok := x.open(s, nil); !ok {
			b.Fatal("did not open")
		}
	}
}

// BenchmarkCTRHMACTicket is what crypto/tls's own tickets cost for the same state
// (AES-128-CTR, then HMAC-SHA256 over IV and ciphertext; a cipher and a MAC per ticket),
// for comparison with BenchmarkXAESTicket.
func BenchmarkCTRHMACTicket(b *testing.B) {
	var key [32]byte
	state := make([]byte, 1050)
	b.ReportAllocs()
	for b.Loop() {
		enc := make([]byte, aes.BlockSize+len(state)+sha256.Size)
		rand.Read(enc[:aes.BlockSize])
		block, _ := aes.NewCipher(key[:16])
		cipher.NewCTR(block, enc[:aes.BlockSize]).XORKeyStream(enc[aes.BlockSize:len(enc)-sha256.Size], state)
		mac := hmac.New(sha256.New, key[16:])
		mac.Write(enc[:len(enc)-sha256.Size])
		mac.Sum(enc[:len(enc)-sha256.Size])
		check := hmac.New(sha256.New, key[16:])
		check.Write(enc[:len(enc)-sha256.Size])
		if !hmac.Equal(check.Sum(nil), enc[len(enc)-sha256.Size:]) {
			b.Fatal("mac")
		}
		block, _ = aes.NewCipher(key[:16])
		pt := make([]byte, len(state))
		cipher.NewCTR(block, enc[:aes.BlockSize]).XORKeyStream(pt, enc[aes.BlockSize:len(enc)-sha256.Size])
	}
}

// TestUnwrapNeverFails: a ticket that does not open — garbage, too short, sealed under
// another policy's keys — gives no session and no error, so crypto/tls runs a full
// handshake instead of aborting this one.
func TestUnwrapNeverFails(t *testing.T) {
	var p, other policyTickets
	p.set([][32]byte{{1}, {2}})
	other.set([][32]byte{{3}})
	foreign, err := (*other.keys.Load())[0].seal([]byte("a state"), ticketAD)
	if err != nil {
		t.Fatal(err)
	}
	notState, err := (*p.keys.Load())[1].seal([]byte("not a session state"), ticketAD)
	if err != nil {
		t.Fatal(err)
	}
	for _, ticket := range [][]byte{nil, {1, 2, 3}, bytes.Repeat([]byte{7}, 1100), foreign, notState} {
		if ss, err := p.unwrap(ticket, tls.ConnectionState{}); ss != nil || err != nil {
			t.Fatalf("unwrap(%d bytes) = %v, %v; want nil, nil", len(ticket), ss, err)
		}
	}
}

// TestXAESBatches: tickets of one batch share the nonce's prefix and nothing else, a
// batch seals at most perBatch tickets, and another holder of the key (a fleet peer, a
// restarted node) opens every batch's tickets.
func TestXAESBatches(t *testing.T) {
	x, peer := newXAES([32]byte{1}), newXAES([32]byte{1})
	x.perBatch = 3
	prefixes, nonces := map[string]int{}, map[string]bool{}
	for i := range 7 {
		s, err := x.seal([]byte{byte(i)}, ticketAD)
		if err != nil {
			t.Fatal(err)
		}
		prefixes[string(s[:12])]++
		if nonces[string(s[12:xaesNonceSize])] {
			t.Fatalf("ticket %d repeats a GCM nonce", i)
		}
		nonces[string(s[12:xaesNonceSize])] = true
		for _, o := range []*xaes{x, peer} {
			if pt, ok := o.open(s, ticketAD); !ok || len(pt) != 1 || pt[0] != byte(i) {
				t.Fatalf("ticket %d: open = %v, %v", i, pt, ok)
			}
		}
	}
	if len(prefixes) != 3 {
		t.Fatalf("7 tickets in batches of 3 used %d prefixes: %v", len(prefixes), prefixes)
	}
	for p, n := range prefixes {
		if n > 3 {
			t.Fatalf("prefix %x sealed %d tickets", p, n)
		}
	}
}

// TestXAESOpenedBounded: the derived keys open keeps stay bounded however many batches
// it meets, and a forged ticket (a prefix with no valid tag) never takes a place.
func TestXAESOpenedBounded(t *testing.T) {
	x, peer := newXAES([32]byte{1}), newXAES([32]byte{1})
	x.perBatch = 1
	for i := range openedBatches + 10 {
		s, err := x.seal([]byte("state"), ticketAD)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := peer.open(s, ticketAD); !ok {
			t.Fatalf("ticket %d did not open", i)
		}
	}
	if n := len(peer.opened); n != openedBatches {
		t.Fatalf("open keeps %d derived keys, bound %d", n, openedBatches)
	}
	fresh := newXAES([32]byte{1})
	forged := bytes.Repeat([]byte{9}, xaesOverhead+10)
	if _, ok := fresh.open(forged, ticketAD); ok || len(fresh.opened) != 0 {
		t.Fatalf("a forged ticket opened or was remembered (%d kept)", len(fresh.opened))
	}
}
