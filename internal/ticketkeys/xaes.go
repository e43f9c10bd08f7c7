package ticketkeys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
)

// XAES-256-GCM (c2sp.org/XAES-256-GCM): AES-256-GCM with a 192-bit nonce. The first 96
// bits of the nonce derive the message's AES-256 key from the long-term key (NIST SP
// 800-108r1 counter-mode KDF over AES-CMAC, two AES blocks), the last 96 are the GCM
// nonce. Random nonces are then safe for any number of messages, where plain AES-GCM
// allows 2^32 per key: a fleet sharing one ticket key for a day may issue more tickets
// than that, and a repeated GCM nonce would let an attacker forge tickets — sessions
// with any client certificate. The standard library has XAES only internally
// (crypto/internal/fips140/aes/gcm), so it is written out here and held to the
// specification's vectors (TestXAESVectors).

const (
	xaesNonceSize = 24
	xaesOverhead  = xaesNonceSize + 16 // nonce, then the GCM tag after the ciphertext
)

// xaes is one long-term XAES-256-GCM key. It is safe for concurrent use.
type xaes struct {
	block cipher.Block // AES-256 under the long-term key
	k1    [16]byte     // the CMAC subkey: L = AES(0^128), K1 = L·x in GF(2^128)
}

func newXAES(key [32]byte) *xaes {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil // unreachable: 32 bytes is a valid AES key size
	}
	x := &xaes{block: block}
	var l [16]byte
	block.Encrypt(l[:], l[:])
	msb := l[0] >> 7
	for i := range 15 {
		x.k1[i] = l[i]<<1 | l[i+1]>>7
	}
	x.k1[15] = l[15]<<1 ^ msb*0x87
	return x
}

// aead returns the AES-256-GCM of the message key derived from n, the nonce's first
// 12 bytes.
func (x *xaes) aead(n []byte) (cipher.AEAD, error) {
	var m1, m2 [16]byte
	m1[1], m1[2] = 1, 'X'
	m2[1], m2[2] = 2, 'X'
	copy(m1[4:], n[:12])
	copy(m2[4:], n[:12])
	var key [32]byte
	for i := range 16 {
		m1[i] ^= x.k1[i]
		m2[i] ^= x.k1[i]
	}
	x.block.Encrypt(key[:16], m1[:])
	x.block.Encrypt(key[16:], m2[:])
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// seal encrypts and authenticates plaintext under a fresh random nonce: nonce ||
// ciphertext || tag.
func (x *xaes) seal(plaintext, additional []byte) ([]byte, error) {
	out := make([]byte, xaesNonceSize, xaesOverhead+len(plaintext))
	rand.Read(out) // never fails (Go 1.24+ crashes instead)
	g, err := x.aead(out[:12])
	if err != nil {
		return nil, err
	}
	return g.Seal(out, out[12:xaesNonceSize], plaintext, additional), nil
}

// open reverses seal; ok is false for anything seal did not make under this key.
func (x *xaes) open(sealed, additional []byte) ([]byte, bool) {
	if len(sealed) < xaesOverhead {
		return nil, false
	}
	g, err := x.aead(sealed[:12])
	if err != nil {
		return nil, false
	}
	plaintext, err := g.Open(nil, sealed[12:xaesNonceSize], sealed[xaesNonceSize:], additional)
	return plaintext, err == nil
}
