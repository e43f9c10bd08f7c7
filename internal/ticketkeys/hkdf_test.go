package ticketkeys

import (
	"crypto/hkdf"
	"crypto/sha256"
	"testing"
)

// TestHKDF32MatchesHKDF: the written-out single-block HKDF gives crypto/hkdf's bytes.
func TestHKDF32MatchesHKDF(t *testing.T) {
	for _, info := range []string{"", "a", "tlsgate session ticket key v1\x00listener/api"} {
		secret := []byte("0123456789abcdef0123456789abcdef" + info)
		want, err := hkdf.Key(sha256.New, secret, nil, info, 32)
		if err != nil {
			t.Fatal(err)
		}
		if got := hkdf32(secret, info); string(got[:]) != string(want) {
			t.Errorf("info %q: hkdf32 = %x, want %x", info, got, want)
		}
	}
}
