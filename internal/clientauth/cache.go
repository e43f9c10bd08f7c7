package clientauth

import (
	"container/list"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"sync"
	"time"
)

// Cache keeps the chains a Verifier built, by the certificates the client sent, so that a
// client seen before skips x509 chain building (ssl.verify_cache). It holds at most its
// size, dropping the least recently used; it is safe for concurrent use.
//
// A Cache serves one Verifier: an entry says "these certificates chain to that Verifier's
// roots", nothing more. tlsconf builds a new one with every Auth, so a reload (perhaps
// with another CA bundle) starts empty and a chain verified under old roots never counts
// under new ones. Only chains whose whole pipeline passed are stored, so a refused client
// always runs the full verification and gets its precise reason. A hit re-checks every
// certificate's validity period at the current clock (a miss when that fails) and is
// always followed by CheckVerified: CA-as-leaf, denylist, CRL, OCSP and allow-list are
// never cached, so a new CRL or denylist entry refuses a cached client at once.
//
// A client holding one valid certificate can append junk certificates to make as many
// distinct keys as it likes (each verifies, as x509 ignores intermediates it does not
// need): that only evicts others' entries, each time at the cost of a full
// verification, as any client's first handshake, of at most max_client_chain
// certificates; it never lets anyone in.
type Cache struct {
	mu      sync.Mutex
	size    int
	entries map[[sha256.Size]byte]*list.Element
	order   list.List // of *cacheEntry, most recently used first
	hits    uint64
	misses  uint64
	// Observe, when set, is told the result of every lookup (outside the lock); set it
	// before the Cache is used.
	Observe func(hit bool)
	// recent are the last verifications that passed, by the very slice of certificates
	// (a connection's PeerCertificates), for Verifier.Passed.
	recent [recentSize]passed
	next   int
}

// recentSize is how many passed verifications Passed remembers: enough for the
// handshakes that may complete between a connection's VerifyConnection and its Verdict.
const recentSize = 64

type passed struct {
	certs, chain []*x509.Certificate
}

type cacheEntry struct {
	key   [sha256.Size]byte
	chain []*x509.Certificate
}

// NewCache returns a cache of at most size chains (at least one).
func NewCache(size int) *Cache {
	size = max(size, 1)
	return &Cache{size: size, entries: make(map[[sha256.Size]byte]*list.Element, min(size, 1024))}
}

// cacheKey is the SHA-256 of the certificates as sent, each prefixed by its length, so
// that no two lists of certificates share a key by splitting the bytes differently.
func cacheKey(certs []*x509.Certificate) [sha256.Size]byte {
	h := sha256.New()
	var n [4]byte
	for _, c := range certs {
		binary.BigEndian.PutUint32(n[:], uint32(len(c.Raw)))
		h.Write(n[:])
		h.Write(c.Raw)
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// get returns the chain stored for key if every certificate of it is within its validity
// period at now (the leaf with grace past its NotAfter), or nil, and counts the lookup.
func (c *Cache) get(key [sha256.Size]byte, now time.Time, grace time.Duration) []*x509.Certificate {
	chain := c.lookup(key, now, grace)
	if c.Observe != nil {
		c.Observe(chain != nil)
	}
	return chain
}

// lookup is get under the lock.
func (c *Cache) lookup(key [sha256.Size]byte, now time.Time, grace time.Duration) []*x509.Certificate {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if ok && !validAt(e.Value.(*cacheEntry).chain, now, grace) {
		delete(c.entries, key) // verified in full again; stored again if it passes
		c.order.Remove(e)
		ok = false
	}
	if !ok {
		c.misses++
		return nil
	}
	c.hits++
	c.order.MoveToFront(e)
	return e.Value.(*cacheEntry).chain
}

// put stores chain for key, dropping the least recently used entry when full.
func (c *Cache) put(key [sha256.Size]byte, chain []*x509.Certificate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok {
		e.Value.(*cacheEntry).chain = chain
		c.order.MoveToFront(e)
		return
	}
	for c.order.Len() >= c.size {
		old := c.order.Back()
		delete(c.entries, old.Value.(*cacheEntry).key)
		c.order.Remove(old)
	}
	c.entries[key] = c.order.PushFront(&cacheEntry{key: key, chain: chain})
}

// drop removes key (a stored chain that no longer passes).
func (c *Cache) drop(key [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok {
		delete(c.entries, key)
		c.order.Remove(e)
	}
}

// remember notes that the pipeline passed for certs, giving chain.
func (c *Cache) remember(certs, chain []*x509.Certificate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recent[c.next] = passed{certs, chain}
	c.next = (c.next + 1) % recentSize
}

// passed returns the chain remembered for this very slice of certificates, or nil. The
// slice's backing array is compared, not the bytes: the entry holds it, so its address
// names these certificates alone.
func (c *Cache) passed(certs []*x509.Certificate) []*x509.Certificate {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.recent {
		if len(p.certs) == len(certs) && len(certs) > 0 && &p.certs[0] == &certs[0] {
			return p.chain
		}
	}
	return nil
}

// Len is the number of chains stored.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// Stats returns how many lookups found a chain and how many did not (a stored chain
// whose validity period no longer holds is a miss).
func (c *Cache) Stats() (hits, misses uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.misses
}

// validAt reports whether every certificate of a verified chain is within its validity
// period at now, the leaf allowed grace past its NotAfter (as Verify allows it).
func validAt(chain []*x509.Certificate, now time.Time, grace time.Duration) bool {
	for i, c := range chain {
		notAfter := c.NotAfter
		if i == 0 {
			notAfter = notAfter.Add(grace)
		}
		if now.Before(c.NotBefore) || now.After(notAfter) {
			return false
		}
	}
	return true
}
