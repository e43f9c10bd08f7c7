// Package ticketkeys owns the session-ticket keys of every TLS policy: a set of master
// keys, newest first (the newest encrypts new tickets, every one still held decrypts),
// from which each policy's keys are derived with HKDF-SHA256 over the policy's identity
// string. Derivation keeps policies apart (a ticket issued by a one-way listener never
// decrypts under a mutual one, nor one of CA A under CA B) while the whole set rotates
// at once.
//
// Where the masters come from:
//   - Locally (the default): Run rotates the set every Rotation (default 24 h): a new
//     master is drawn and encrypts from then on; the previous one is kept to decrypt
//     for one more Rotation, then dropped. A ticket therefore resumes for at least
//     Rotation and at most twice Rotation after it was issued (crypto/tls caps it at
//     7 days in any case), and a stolen master opens no ticket older than that.
//   - From another source: SetMasters replaces the whole set (a fleet pushes the set it
//     holds in etcd, so every node encrypts with the same newest key and decrypts the
//     others' tickets). From then on the ring neither draws nor drops masters: the
//     source owns their lifecycle, and pushes a new set to rotate. ResumeLocal hands
//     the set back to the local rotator (a fleet that lost its source).
//
// Every *tls.Config handed to Attach follows the set without a reload: the ring seals
// and opens its tickets itself (WrapSession, UnwrapSession; seal.go) with the policy's
// keys of the current set. The ring holds the configs weakly, so configs of replaced
// listeners are not kept alive by it.
//
// Master secrets are never logged or printed: Master's String and LogValue show only
// its creation time and a one-way fingerprint.
package ticketkeys

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
	"weak"
)

// DefaultRotation is how often a local ring draws a new master: daily, the bound testssl
// asks for ("PFS requires session ticket keys to be rotated < daily") and crypto/tls's
// own rotation period.
const DefaultRotation = 24 * time.Hour

// MaxMasters bounds the set SetMasters accepts: each master costs one trial decryption
// of a ticket that does not match the newest.
const MaxMasters = 16

// Master is one master key. Secret is never printed: see String.
type Master struct {
	Secret [32]byte
	// Created is when the master was drawn; the local rotator ages masters by it.
	Created time.Time
}

// NewMaster draws a master created at now.
func NewMaster(now time.Time) Master {
	m := Master{Created: now}
	rand.Read(m.Secret[:]) // never fails (Go 1.24+ crashes instead)
	return m
}

// ID is a fingerprint of the secret (SHA-256 of a label and the secret, 8 bytes in
// hex): safe to log, and the same on every node holding the same master.
func (m Master) ID() string {
	h := sha256.New()
	h.Write([]byte("tlsgate ticket master id\x00"))
	h.Write(m.Secret[:])
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// String shows the fingerprint and creation time, never the secret, so a master put
// in a log line or an error by mistake does not leak.
func (m Master) String() string {
	return fmt.Sprintf("master %s created %s", m.ID(), m.Created.UTC().Format(time.RFC3339))
}

// GoString keeps %#v from printing the secret too.
func (m Master) GoString() string { return m.String() }

// LogValue keeps slog from printing the secret.
func (m Master) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", m.ID()), slog.Time("created", m.Created))
}

// Options are the edges of a Ring. The zero value is valid.
type Options struct {
	// Rotation is how often Run draws a new master; 0 means DefaultRotation.
	Rotation time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives one line per rotation (fingerprints only); nil discards.
	Log *slog.Logger
}

// Ring is the master set and the configs that follow it. It is safe for concurrent use.
type Ring struct {
	now  func() time.Time
	log  *slog.Logger
	kick chan struct{} // wakes Run when the set or the rotation period changes

	mu       sync.Mutex
	rotation time.Duration
	masters  []Master // newest first, never empty
	external bool     // SetMasters was called: the ring no longer rotates on its own
	attached []attachment
}

type attachment struct {
	cfg     weak.Pointer[tls.Config] // only to notice that the config is gone
	info    string                   // HKDF info of its keys: format label, identity, bundle digest
	tickets *policyTickets           // cfg's WrapSession and UnwrapSession
}

// New returns a ring holding one fresh master.
func New(opts Options) *Ring {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Rotation <= 0 {
		opts.Rotation = DefaultRotation
	}
	return &Ring{now: opts.Now, log: opts.Log, kick: make(chan struct{}, 1), rotation: opts.Rotation,
		masters: []Master{NewMaster(opts.Now())}}
}

// derive computes one key per master: HKDF-SHA256(secret, info), where info is a label
// and the identity (Attach). The identity must name everything that decides who a
// policy lets in, since two policies with the same identity accept each other's
// tickets. The label names the ticket format (v2: XAES-256-GCM, seal.go; v1 was
// crypto/tls's own; v3: v2 with the CA bundle's certificates elided, elide.go), so a
// key never serves two formats.
func derive(ms []Master, info string) [][32]byte {
	keys := make([][32]byte, len(ms))
	for i, m := range ms {
		keys[i] = hkdf32(m.Secret[:], info)
	}
	return keys
}

// hkdf32 is HKDF-SHA256 (RFC 5869) with an empty salt and a 32-byte output: one block
// of Expand, T(1) = HMAC(PRK, info || 0x01). crypto/hkdf.Key gives the same bytes
// (TestHKDF32MatchesHKDF) but returns an error, possible only past 8,160 bytes of
// output, that a ticket key has nowhere to send.
func hkdf32(secret []byte, info string) (out [32]byte) {
	ext := hmac.New(sha256.New, make([]byte, sha256.Size))
	ext.Write(secret)
	exp := hmac.New(sha256.New, ext.Sum(nil))
	exp.Write([]byte(info))
	exp.Write([]byte{1})
	copy(out[:], exp.Sum(nil))
	return out
}

// Attach makes cfg seal and open its session tickets with the keys of identity
// (cfg.WrapSession and cfg.UnwrapSession, replacing any set before) and keeps them
// current as the set changes. bundle is the policy's CA certificates (DER, in the
// bundle's order; nil for a policy without one): its certificates are elided from the
// tickets (elide.go). The keys are then derived for the bundle too, so a ticket's
// references only ever resolve against the bundle it was sealed with, whatever the
// caller's identity says of it; a fleet's nodes with the same bundle derive the same.
func (r *Ring) Attach(cfg *tls.Config, identity string, bundle [][]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := &policyTickets{elider: newElider(bundle)}
	info := "tlsgate session ticket key v2\x00" + identity
	if p.elider != nil {
		info = "tlsgate session ticket key v3\x00" + identity + "\x00" + digest(bundle)
	}
	p.set(derive(r.masters, info))
	cfg.WrapSession, cfg.UnwrapSession = p.wrap, p.unwrap
	r.attached = append(r.attached, attachment{cfg: weak.Make(cfg), info: info, tickets: p})
	if len(r.attached) >= 64 && len(r.attached)&(len(r.attached)-1) == 0 {
		r.compact() // at each power of two: configs of old reloads go away
	}
}

// compact forgets configs that were collected.
func (r *Ring) compact() {
	r.attached = slices.DeleteFunc(r.attached, func(a attachment) bool { return a.cfg.Value() == nil })
}

// update pushes the current set to every live attached config. Called under r.mu.
func (r *Ring) update() {
	r.compact()
	for _, a := range r.attached {
		a.tickets.set(derive(r.masters, a.info))
	}
}

// Masters returns a copy of the set, newest first.
func (r *Ring) Masters() []Master {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.masters)
}

// SetMasters replaces the set with ms (sorted newest first by Created, so the newest
// encrypts) and pushes it to every attached config. From then on the ring no longer
// rotates on its own: the caller owns the set's lifecycle and calls SetMasters again to
// rotate. ms must hold 1 to MaxMasters distinct masters.
func (r *Ring) SetMasters(ms []Master) error {
	if len(ms) == 0 || len(ms) > MaxMasters {
		return fmt.Errorf("a ticket key set holds 1 to %d masters, not %d", MaxMasters, len(ms))
	}
	ms = slices.Clone(ms)
	slices.SortStableFunc(ms, func(a, b Master) int { return b.Created.Compare(a.Created) })
	for i := range ms {
		if ms[i].Secret == ([32]byte{}) {
			return errors.New("a ticket key master is all zeroes")
		}
		for j := range i {
			if ms[i].Secret == ms[j].Secret {
				return fmt.Errorf("ticket key master %s is in the set twice", ms[i].ID())
			}
		}
	}
	r.mu.Lock()
	r.masters, r.external = ms, true
	r.update()
	r.mu.Unlock()
	r.wake()
	return nil
}

// ResumeLocal hands the set back to the local rotator after SetMasters (a fleet that
// lost its source): the masters held stay, so tickets keep resuming, and Run rotates
// and drops them on its own again from now on.
func (r *Ring) ResumeLocal() {
	r.mu.Lock()
	r.external = false
	r.mu.Unlock()
	r.wake()
}

// SetRotation changes the local rotation period (0 means DefaultRotation); it takes
// effect at once on the running rotator.
func (r *Ring) SetRotation(d time.Duration) {
	if d <= 0 {
		d = DefaultRotation
	}
	r.mu.Lock()
	changed := r.rotation != d
	r.rotation = d
	r.mu.Unlock()
	if changed {
		r.wake()
	}
}

func (r *Ring) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}
