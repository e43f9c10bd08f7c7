package fleet

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// magic starts every sealed value: the format, then 8 bytes naming the key.
var magic = []byte("tlsgate-sealed-v1\n")

const keyIDLen = 8

// Keys seal and open what the fleet stores. The first key seals; every key opens, so
// key_file can be rotated by adding the new key on every node first.
type Keys struct {
	aeads []cipher.AEAD
	ids   [][]byte
}

// LoadKeys reads key_file: 32 raw bytes, or lines of 64 hex digits or base64 of 32
// bytes (the first line seals, all open).
func LoadKeys(path string) (*Keys, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the fleet key: %w", err)
	}
	raw, err := parseKeys(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return NewKeys(raw...)
}

func parseKeys(data []byte) ([][]byte, error) {
	if len(data) == 32 && !isText(data) {
		return [][]byte{data}, nil
	}
	var keys [][]byte
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := hex.DecodeString(line)
		if err != nil {
			k, err = base64.StdEncoding.DecodeString(line)
		}
		if err != nil || len(k) != 32 {
			return nil, fmt.Errorf("line %d: a key is 32 bytes, written as 64 hex digits or base64 (or the file is 32 raw bytes)", n+1)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no key: write 32 random bytes (head -c 32 /dev/urandom)")
	}
	return keys, nil
}

// isText reports whether data looks like a text key file rather than 32 raw bytes.
func isText(data []byte) bool {
	for _, b := range data {
		if b < 0x20 && b != '\n' && b != '\r' || b > 0x7e {
			return false
		}
	}
	return true
}

// NewKeys makes Keys from 32-byte keys; the first seals.
func NewKeys(raw ...[]byte) (*Keys, error) {
	k := &Keys{}
	for _, r := range raw {
		if len(r) != 32 {
			return nil, fmt.Errorf("a fleet key is 32 bytes, not %d", len(r))
		}
		block, err := aes.NewCipher(r)
		if err != nil {
			return nil, err
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(append([]byte("tlsgate fleet key id\n"), r...))
		k.aeads, k.ids = append(k.aeads, gcm), append(k.ids, sum[:keyIDLen])
	}
	if len(k.aeads) == 0 {
		return nil, errors.New("no fleet key")
	}
	return k, nil
}

// Seal encrypts plain for the key name (relative to the prefix, bound as associated data).
func (k *Keys) Seal(name string, plain []byte) []byte {
	g := k.aeads[0]
	out := append(append([]byte{}, magic...), k.ids[0]...)
	nonce := make([]byte, g.NonceSize())
	_, _ = rand.Read(nonce)
	out = append(out, nonce...)
	return g.Seal(out, nonce, plain, []byte(name))
}

// ErrWrongKey means a value was sealed with a key this node does not have.
var ErrWrongKey = errors.New("sealed with another fleet key (key_file differs from the one that pushed)")

// Open decrypts a value Seal made for name.
func (k *Keys) Open(name string, sealed []byte) ([]byte, error) {
	rest, ok := bytes.CutPrefix(sealed, magic)
	if !ok || len(rest) < keyIDLen {
		return nil, fmt.Errorf("%s: not a sealed value", name)
	}
	id, rest := rest[:keyIDLen], rest[keyIDLen:]
	for i, kid := range k.ids {
		if !bytes.Equal(kid, id) {
			continue
		}
		g := k.aeads[i]
		if len(rest) < g.NonceSize() {
			return nil, fmt.Errorf("%s: truncated sealed value", name)
		}
		plain, err := g.Open(nil, rest[:g.NonceSize()], rest[g.NonceSize():], []byte(name))
		if err != nil {
			return nil, fmt.Errorf("%s: sealed value fails authentication (tampered, or moved from another key)", name)
		}
		return plain, nil
	}
	return nil, fmt.Errorf("%s: %w", name, ErrWrongKey)
}
