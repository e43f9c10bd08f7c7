package status

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"sync"
	"time"

	"tlsgate/internal/clientauth"
	"tlsgate/internal/config"
	"tlsgate/internal/listener"
)

// Bounds of the history a Recorder keeps (documented in README "Web console").
const (
	// MaxClients is how many distinct client identities are kept, by certificate
	// fingerprint; the least recently seen is dropped first.
	MaxClients = 1000
	// HandshakesPerClient is how many recent handshakes are kept per identity.
	HandshakesPerClient = 10
	// MaxRefusals is how many refused handshakes are kept, newest first.
	MaxRefusals = 1000
	// Window is how far back handshake counts go, in one-minute buckets.
	Window = 60 * time.Minute
)

const buckets = int(Window / time.Minute)

// Recorder is the runtime history of the listeners: a listener.Observer. Its methods
// are safe for concurrent use; each handshake takes one short lock.
type Recorder struct {
	now func() time.Time

	mu       sync.Mutex
	clients  map[string]*list.Element // fingerprint → element of order holding *Client
	order    *list.List               // most recently seen first
	refusals [MaxRefusals]Refusal     // a ring; seq counts every refusal ever added
	seq      uint64
	counts   map[string]*[buckets]bucket // listener → per-minute counts
	fetches  map[string]Fetch            // CRL URL → last fetch
	notes    map[string]DenyNote         // denylist value (upper-case) → when and why
}

// bucket counts the handshakes of one minute.
type bucket struct {
	minute  int64 // unix minutes; a bucket of another minute is stale
	success uint64
	failure uint64
	reasons map[clientauth.Reason]uint64
}

// Client is one client identity seen recently, by its certificate.
type Client struct {
	Subject     string    `json:"subject"`
	CommonName  string    `json:"common_name,omitempty"`
	Issuer      string    `json:"issuer"`
	Serial      string    `json:"serial"`
	Fingerprint string    `json:"fingerprint"`
	SPKISHA256  string    `json:"spki_sha256"`
	URIs        []string  `json:"uris,omitempty"`
	DNSNames    []string  `json:"dns_names,omitempty"`
	NotAfter    time.Time `json:"not_after"`
	DaysLeft    int       `json:"days_left"`
	Listener    string    `json:"listener"`
	LastSeen    time.Time `json:"last_seen"`
	// LastVerdict is "ok" or the reason code of the last handshake.
	LastVerdict string `json:"last_verdict"`
	// Handshakes are the identity's recent handshakes, newest first.
	Handshakes []Seen `json:"handshakes,omitempty"`
}

// Seen is one handshake of a client identity.
type Seen struct {
	Time     time.Time `json:"time"`
	Listener string    `json:"listener"`
	Client   string    `json:"client"`
	Verdict  string    `json:"verdict"`
	Rule     string    `json:"rule,omitempty"` // a request refused by this path rule
}

// Refusal is one refused handshake.
type Refusal struct {
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	Listener string    `json:"listener"`
	Client   string    `json:"client"`
	Reason   string    `json:"reason"`
	// Fix is the reason table's one-line fix, the words probe and the 403 page use.
	Fix         string `json:"fix"`
	Subject     string `json:"subject,omitempty"`
	Issuer      string `json:"issuer,omitempty"`
	Serial      string `json:"serial,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	// Rule is the path rule whose allow-list refused a request; "" for a handshake.
	Rule string `json:"rule,omitempty"`
}

// Fetch is the last fetch of a CRL URL.
type Fetch struct {
	Time   time.Time `json:"time"`
	Result string    `json:"result"` // updated, unchanged or failure
	Error  string    `json:"error,omitempty"`
}

// DenyNote is when and why a denylist entry was added through the admin API or console.
type DenyNote struct {
	Added time.Time `json:"added"`
	Note  string    `json:"note,omitempty"`
	By    string    `json:"by,omitempty"`
}

// NewRecorder returns an empty history; now is the clock for expiry (nil: time.Now).
func NewRecorder(now func() time.Time) *Recorder {
	if now == nil {
		now = time.Now
	}
	return &Recorder{now: now, clients: map[string]*list.Element{}, order: list.New(),
		counts: map[string]*[buckets]bucket{}, fetches: map[string]Fetch{}, notes: map[string]DenyNote{}}
}

var _ listener.Observer = (*Recorder)(nil)

// Handshake records one handshake: its count, its client identity and, when refused,
// the refusal. A known identity costs a map lookup; a new one is described outside the
// lock.
func (r *Recorder) Handshake(h *listener.Handshake) {
	r.mu.Lock()
	if h.Rule == "" { // a refused request's handshake was counted already
		r.count(h)
	}
	known := h.Presented != nil && r.clients[h.Fingerprint] != nil
	if known {
		r.seen(nil, h)
	}
	if h.Result == "failure" {
		r.refused(h)
	}
	r.mu.Unlock()
	if h.Presented != nil && !known {
		fresh := describe(h)
		r.mu.Lock()
		r.seen(fresh, h)
		r.mu.Unlock()
	}
}

// refused adds h to the refusals. The caller holds r.mu.
func (r *Recorder) refused(h *listener.Handshake) {
	r.seq++
	x := Refusal{
		Seq: r.seq, Time: h.Time, Listener: h.Listener, Client: h.Client,
		Reason: h.Reason.Label(), Fix: h.Reason.Fix(),
		Subject: h.Subject, Serial: h.Serial, Fingerprint: h.Fingerprint, Rule: h.Rule,
	}
	if h.Presented != nil {
		x.Issuer = h.Presented.Issuer.String()
	}
	r.refusals[r.seq%MaxRefusals] = x
}

// describe turns a presented certificate into a Client (without its history).
func describe(h *listener.Handshake) *Client {
	c := h.Presented
	spki := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	id := &Client{
		Subject: h.Subject, CommonName: c.Subject.CommonName, Issuer: c.Issuer.String(),
		Serial: h.Serial, Fingerprint: h.Fingerprint, SPKISHA256: hex.EncodeToString(spki[:]),
		DNSNames: c.DNSNames, NotAfter: c.NotAfter,
	}
	for _, u := range c.URIs {
		id.URIs = append(id.URIs, u.String())
	}
	return id
}

// count adds h to its listener's bucket of the current minute.
func (r *Recorder) count(h *listener.Handshake) {
	bs := r.counts[h.Listener]
	if bs == nil {
		bs = new([buckets]bucket)
		r.counts[h.Listener] = bs
	}
	m := h.Time.Unix() / 60
	b := &bs[m%int64(buckets)]
	if b.minute != m {
		*b = bucket{minute: m}
	}
	if h.Result == "failure" {
		b.failure++
		if b.reasons == nil {
			b.reasons = map[clientauth.Reason]uint64{}
		}
		b.reasons[h.Reason]++
		return
	}
	b.success++
}

// seen moves the identity of h to the front of the recent clients, adding fresh if it
// is new and dropping the least recently seen beyond MaxClients. The caller holds r.mu.
func (r *Recorder) seen(fresh *Client, h *listener.Handshake) {
	e := r.clients[h.Fingerprint]
	if e == nil {
		e = r.order.PushFront(fresh)
		r.clients[fresh.Fingerprint] = e
		if r.order.Len() > MaxClients {
			last := r.order.Back()
			r.order.Remove(last)
			delete(r.clients, last.Value.(*Client).Fingerprint)
		}
	} else {
		r.order.MoveToFront(e)
	}
	c := e.Value.(*Client)
	c.Listener, c.LastSeen, c.LastVerdict = h.Listener, h.Time, h.Reason.Label()
	if h.Result == "failure" && h.Reason == clientauth.OK {
		c.LastVerdict = "refused"
	}
	s := Seen{Time: h.Time, Listener: h.Listener, Client: h.Client, Verdict: c.LastVerdict, Rule: h.Rule}
	if len(c.Handshakes) < HandshakesPerClient {
		c.Handshakes = append(c.Handshakes, Seen{})
	}
	copy(c.Handshakes[1:], c.Handshakes)
	c.Handshakes[0] = s
}

// CRLFetched records the outcome of fetching a CRL URL (result: updated, unchanged or
// failure).
func (r *Recorder) CRLFetched(url, result string, err error) {
	f := Fetch{Time: time.Now(), Result: result}
	if err != nil {
		f.Error = err.Error()
	}
	r.mu.Lock()
	r.fetches[url] = f
	r.mu.Unlock()
}

// Denied records why and by whom a denylist value was added, once the change is
// applied (Applied stamped when).
func (r *Recorder) Denied(value, note, by string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := strings.ToUpper(value)
	n := r.notes[k]
	if n.Added.IsZero() {
		n.Added = time.Now()
	}
	n.Note, n.By = note, by
	r.notes[k] = n
}

// Applied notes when each denylist value first took effect: values of the first
// configuration (first) are from the file, with no time; a value that appears later
// (admin API, console, an edit and reload) is stamped now.
func (r *Recorder) Applied(d config.Denylist, first bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range slices.Concat(d.Serials, d.SPKISHA256) {
		k := strings.ToUpper(v)
		if _, ok := r.notes[k]; !ok {
			n := DenyNote{}
			if !first {
				n.Added = time.Now()
			}
			r.notes[k] = n
		}
	}
}
