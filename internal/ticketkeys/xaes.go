package ticketkeys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"sync"
	"sync/atomic"
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
//
// Deriving a message key costs an AES key schedule and a GCM set-up (two allocations,
// about 1.3 KB) on each side of every ticket, so tickets are sealed in batches: a batch
// draws the nonce's first 12 bytes at random once and seals up to batchTickets tickets
// under the key derived from them, each with its own random last 12 bytes (random
// 96-bit GCM nonces under one derived key: a collision after 2^24 of them has a
// probability below 2^-48). Opening keeps the keys of the batches it has authenticated
// a ticket of (at most openedBatches), so a node's own tickets and its fleet peers'
// open without a derivation. The batch prefix tells which node and batch issued a
// ticket, much as OpenSSL's tickets name their key in the clear; nothing else is shared
// between tickets.

const (
	xaesNonceSize = 24
	xaesOverhead  = xaesNonceSize + 16 // nonce, then the GCM tag after the ciphertext
)

const (
	// batchTickets is how many tickets one batch seals.
	batchTickets = 1 << 24
	// openedBatches bounds the derived keys open keeps (about 1.3 KB each).
	openedBatches = 16
)

// xaes is one long-term XAES-256-GCM key. It is safe for concurrent use.
type xaes struct {
	block cipher.Block // AES-256 under the long-term key
	k1    [16]byte     // the CMAC subkey: L = AES(0^128), K1 = L·x in GF(2^128)

	sealing  atomic.Pointer[batch] // the batch seal uses; nil before the first ticket
	perBatch int64                 // batchTickets; smaller in tests

	mu     sync.RWMutex
	opened map[[12]byte]cipher.AEAD // derived keys of batches a ticket was authenticated in
}

// batch is a nonce prefix and the AES-GCM of the key derived from it.
type batch struct {
	prefix [12]byte
	aead   cipher.AEAD
	left   atomic.Int64 // tickets it may still seal
}

func newXAES(key [32]byte) *xaes {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil // unreachable: 32 bytes is a valid AES key size
	}
	x := &xaes{block: block, perBatch: batchTickets, opened: make(map[[12]byte]cipher.AEAD)}
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

// seal encrypts and authenticates plaintext under a nonce of the current batch:
// nonce (batch prefix, then 12 random bytes) || ciphertext || tag.
func (x *xaes) seal(plaintext, additional []byte) ([]byte, error) {
	b, err := x.batch()
	if err != nil {
		return nil, err
	}
	out := make([]byte, xaesNonceSize, xaesOverhead+len(plaintext))
	copy(out, b.prefix[:])
	rand.Read(out[12:]) // never fails (Go 1.24+ crashes instead)
	return b.aead.Seal(out, out[12:xaesNonceSize], plaintext, additional), nil
}

// batch returns a batch that may seal one more ticket, starting a new one when the
// current one is used up. Concurrent callers may each start one: harmless, every
// prefix is random.
func (x *xaes) batch() (*batch, error) {
	if b := x.sealing.Load(); b != nil && b.left.Add(-1) >= 0 {
		return b, nil
	}
	b := &batch{}
	rand.Read(b.prefix[:]) // never fails (Go 1.24+ crashes instead)
	g, err := x.aead(b.prefix[:])
	if err != nil {
		return nil, err
	}
	b.aead = g
	b.left.Store(x.perBatch - 1)
	x.sealing.Store(b)
	x.remember(b.prefix, g)
	return b, nil
}

// open reverses seal; ok is false for anything seal did not make under this key.
func (x *xaes) open(sealed, additional []byte) ([]byte, bool) {
	if len(sealed) < xaesOverhead {
		return nil, false
	}
	prefix := [12]byte(sealed[:12])
	x.mu.RLock()
	g, known := x.opened[prefix]
	x.mu.RUnlock()
	if !known {
		var err error
		if g, err = x.aead(prefix[:]); err != nil {
			return nil, false
		}
	}
	plaintext, err := g.Open(nil, sealed[12:xaesNonceSize], sealed[xaesNonceSize:], additional)
	if err != nil {
		return nil, false
	}
	if !known {
		x.remember(prefix, g) // authenticated: forged prefixes never take a place
	}
	return plaintext, true
}

// remember keeps the derived key of a batch, making room by dropping an arbitrary one.
func (x *xaes) remember(prefix [12]byte, g cipher.AEAD) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(x.opened) >= openedBatches {
		for k := range x.opened {
			delete(x.opened, k)
			break
		}
	}
	x.opened[prefix] = g
}
