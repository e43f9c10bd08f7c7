package status

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"tlsgate/internal/clientauth"
)

// View is the runtime view: what GET /api/v1/status returns and the console shows.
type View struct {
	Time time.Time `json:"time"`
	// FleetRevision is the fleet revision (etcd) the node serves; 0 outside fleet mode.
	FleetRevision int64          `json:"fleet_revision,omitempty"`
	Listeners     []Listener     `json:"listeners"`
	Handshakes    Handshakes     `json:"handshakes"`
	TopRefusals   []ReasonCount  `json:"top_refusals"`
	Certificates  []Certificate  `json:"certificates"`
	CABundles     []CABundle     `json:"ca_bundles"`
	TargetGroups  []TargetGroup  `json:"target_groups"`
	Denylist      []DenyEntry    `json:"denylist"`
	Bounds        map[string]int `json:"bounds"`
	Clients       []Client       `json:"clients"`
	Refusals      []Refusal      `json:"refusals"`
	Extra         map[string]any `json:"-"`
	counts        map[string]Handshakes
}

// Handshakes are counts over the last 5 and 60 minutes.
type Handshakes struct {
	Last5  Counts `json:"last_5m"`
	Last60 Counts `json:"last_60m"`
}

// Counts are handshakes by result, and refusals by reason.
type Counts struct {
	Success  uint64            `json:"success"`
	Failure  uint64            `json:"failure"`
	ByReason map[string]uint64 `json:"by_reason,omitempty"`
}

func (c *Counts) add(b *bucket) {
	c.Success += b.success
	c.Failure += b.failure
	for r, n := range b.reasons {
		if c.ByReason == nil {
			c.ByReason = map[string]uint64{}
		}
		c.ByReason[r.Label()] += n
	}
}

// ReasonCount is how often a reason refused handshakes, with its meaning and fix.
type ReasonCount struct {
	Reason string `json:"reason"`
	Count  uint64 `json:"count"`
	Text   string `json:"text"`
	Fix    string `json:"fix"`
}

// Listener is one running listener.
type Listener struct {
	ID       string `json:"id"`
	Protocol string `json:"protocol"`
	Address  string `json:"address"`
	// Mode is one_way, mutual or optional; "" for tcp and http listeners.
	Mode       string     `json:"mode,omitempty"`
	Domains    []string   `json:"domains,omitempty"`
	Handshakes Handshakes `json:"handshakes"`
}

// Certificate is one server certificate.
type Certificate struct {
	ID       string    `json:"id"`
	Subject  string    `json:"subject"`
	SANs     []string  `json:"sans,omitempty"`
	Issuer   string    `json:"issuer"`
	NotAfter time.Time `json:"not_after"`
	DaysLeft int       `json:"days_left"`
	// Soon is set when it expires within 30 days (or has expired).
	Soon     bool     `json:"expires_soon"`
	Warnings []string `json:"warnings,omitempty"`
}

// CABundle is one CA bundle with its CRLs.
type CABundle struct {
	ID       string   `json:"id"`
	CAs      []CA     `json:"cas"`
	CRLs     []CRL    `json:"crls,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

// CA is one certificate of a bundle.
type CA struct {
	Subject  string    `json:"subject"`
	NotAfter time.Time `json:"not_after"`
	DaysLeft int       `json:"days_left"`
	Soon     bool      `json:"expires_soon"`
}

// CRL is one CRL of a bundle, or a CRL URL not fetched yet (no Issuer).
type CRL struct {
	Issuer     string    `json:"issuer,omitempty"`
	ThisUpdate time.Time `json:"this_update,omitzero"`
	NextUpdate time.Time `json:"next_update,omitzero"`
	// Soon is set when NextUpdate is within a day, or past (the CRL is stale).
	Soon bool `json:"next_update_soon"`
	// Source is the file named by crl, or the URL of crl_urls / a distribution point.
	Source string `json:"source"`
	// Fetch is the last fetch of a URL; nil for files and URLs not fetched yet.
	Fetch *Fetch `json:"fetch,omitempty"`
}

// TargetGroup is one target group.
type TargetGroup struct {
	ID      string   `json:"id"`
	Targets []Target `json:"targets"`
}

// Target is one target with its health and load.
type Target struct {
	Address string `json:"address"`
	Weight  int    `json:"weight"`
	// Health is "up", "down" (failing active checks), "ejected" (outlier detection:
	// connect failures or timeouts in a row) or "drained" (weight 0).
	Health string `json:"health"`
	Open   int64  `json:"open_connections"`
}

// DenyEntry is one denylist entry; Added is zero for entries from the file.
type DenyEntry struct {
	Kind  string `json:"kind"` // serial or spki_sha256
	Value string `json:"value"`
	DenyNote
}

// counts sums each listener's buckets over the last 5 and 60 minutes, and the whole.
func (r *Recorder) countsAt(now time.Time) (map[string]Handshakes, Handshakes) {
	m := now.Unix() / 60
	out := map[string]Handshakes{}
	var all Handshakes
	for id, bs := range r.counts {
		var h Handshakes
		for i := range bs {
			b := &bs[i]
			age := m - b.minute
			if age < 0 || age >= int64(buckets) {
				continue
			}
			h.Last60.add(b)
			all.Last60.add(b)
			if age < 5 {
				h.Last5.add(b)
				all.Last5.add(b)
			}
		}
		out[id] = h
	}
	return out, all
}

// top orders reasons by count, most first, with their meaning and fix.
func top(c Counts) []ReasonCount {
	out := []ReasonCount{}
	for r, n := range c.ByReason {
		reason := clientauth.Reason(r)
		if r == "ok" {
			reason = clientauth.OK
		}
		out = append(out, ReasonCount{Reason: r, Count: n, Text: reason.Text(), Fix: reason.Fix()})
	}
	slices.SortFunc(out, func(a, b ReasonCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Reason, b.Reason))
	})
	return out
}

// history fills the view's recorded parts: counts, clients, refusals.
func (r *Recorder) history(v *View, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v.counts, v.Handshakes = r.countsAt(now)
	v.TopRefusals = top(v.Handshakes.Last60)
	v.Clients = make([]Client, 0, r.order.Len())
	for e := r.order.Front(); e != nil; e = e.Next() {
		c := *e.Value.(*Client)
		c.Handshakes = slices.Clone(c.Handshakes)
		c.DaysLeft = daysLeft(c.NotAfter, now)
		v.Clients = append(v.Clients, c)
	}
	v.Refusals = r.refusalsAfter(0)
}

// refusalsAfter returns the kept refusals with a sequence number above after, newest
// first. The caller holds r.mu.
func (r *Recorder) refusalsAfter(after uint64) []Refusal {
	out := []Refusal{}
	for s := r.seq; s > after && s > 0 && r.seq-s < MaxRefusals; s-- {
		out = append(out, r.refusals[s%MaxRefusals])
	}
	return out
}

// RefusalsAfter returns the refusals newer than sequence number after, newest first:
// what the console's live list polls for.
func (r *Recorder) RefusalsAfter(after uint64) []Refusal {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refusalsAfter(after)
}

// Search returns the recent clients whose common name, subject, SAN, serial,
// fingerprint or SPKI hash contains q (case-insensitive; colons in serials and
// fingerprints ignored).
func Search(clients []Client, q string) []Client {
	q = strings.ToLower(strings.TrimSpace(q))
	if q == "" {
		return clients
	}
	hexq := strings.ReplaceAll(q, ":", "")
	var out []Client
	for _, c := range clients {
		fields := append([]string{c.CommonName, c.Subject}, append(c.URIs, c.DNSNames...)...)
		match := slices.ContainsFunc(fields, func(f string) bool { return strings.Contains(strings.ToLower(f), q) })
		if !match && hexq != "" {
			// Serials are compared without leading zeros: openssl keeps one that
			// tlsgate's log line may not.
			serial := strings.TrimLeft(strings.ToLower(c.Serial), "0")
			match = strings.Contains(serial, strings.TrimLeft(hexq, "0")) ||
				strings.Contains(c.Fingerprint, hexq) || strings.Contains(c.SPKISHA256, hexq)
		}
		if match {
			out = append(out, c)
		}
	}
	return out
}

func daysLeft(t, now time.Time) int {
	return int(t.Sub(now).Hours() / 24)
}
