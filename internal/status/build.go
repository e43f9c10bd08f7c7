package status

import (
	"crypto/x509"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"tlsgate/internal/backend"
	"tlsgate/internal/certstore"
	"tlsgate/internal/config"
	"tlsgate/internal/revocation"
)

// Runtime is the running configuration as the server holds it after a build.
type Runtime struct {
	Config *config.Config
	Store  *certstore.Store
	// Addrs are the bound addresses of the running listeners, by id.
	Addrs  map[string]string
	Groups map[string]*backend.Group
}

// soonDays: what expires within this many days stands out.
const soonDays = 30

// View assembles the runtime view of rt with the recorded history, at now.
func (r *Recorder) View(rt Runtime) *View {
	now := r.now()
	v := &View{Time: now, Bounds: map[string]int{
		"clients": MaxClients, "handshakes_per_client": HandshakesPerClient,
		"refusals": MaxRefusals, "window_minutes": buckets,
	}}
	r.history(v, now)
	if rt.Config == nil {
		return v
	}
	v.FleetRevision = rt.Config.Revision
	v.Listeners = listeners(rt, v.counts)
	v.Certificates, v.CABundles = certificates(rt, now)
	r.mu.Lock()
	r.crlFetches(v.CABundles)
	v.Denylist = r.denylist(rt.Config.Denylist)
	r.mu.Unlock()
	v.TargetGroups = targets(rt, now)
	return v
}

func listeners(rt Runtime, counts map[string]Handshakes) []Listener {
	out := []Listener{}
	for _, lc := range rt.Config.Listeners {
		l := Listener{ID: lc.ID, Protocol: string(lc.Protocol), Address: rt.Addrs[lc.ID], Handshakes: counts[lc.ID]}
		if l.Address == "" {
			l.Address = lc.Listen
		}
		if lc.SSL != nil {
			l.Mode = string(lc.SSL.Mode)
		}
		for _, d := range lc.Domains {
			l.Domains = append(l.Domains, d.Names...)
		}
		out = append(out, l)
	}
	return out
}

// certificates describes the store's server certificates and CA bundles in config
// order, with each entry's lint warnings.
func certificates(rt Runtime, now time.Time) ([]Certificate, []CABundle) {
	warnings := map[int][]string{}
	for _, w := range rt.Store.Warnings {
		n, ok := strings.CutPrefix(w.Path, "certificates[")
		n, _, _ = strings.Cut(n, "]")
		if i, err := strconv.Atoi(n); ok && err == nil {
			warnings[i] = append(warnings[i], strings.TrimPrefix(w.Msg, "warning: "))
		}
	}
	certs, bundles := []Certificate{}, []CABundle{}
	for i, cc := range rt.Config.Certificates {
		if sv := rt.Store.Servers[cc.ID]; sv != nil && sv.Cert.Leaf != nil {
			leaf := sv.Cert.Leaf
			c := Certificate{ID: cc.ID, Subject: leaf.Subject.String(), Issuer: leaf.Issuer.String(),
				SANs: sans(leaf), NotAfter: leaf.NotAfter, Warnings: warnings[i]}
			c.DaysLeft, c.Soon = expiry(leaf.NotAfter, now)
			certs = append(certs, c)
		}
		if ca := rt.Store.CAs[cc.ID]; ca != nil {
			b := CABundle{ID: cc.ID, Warnings: warnings[i]}
			for _, x := range ca.Certs {
				c := CA{Subject: x.Subject.String(), NotAfter: x.NotAfter}
				c.DaysLeft, c.Soon = expiry(x.NotAfter, now)
				b.CAs = append(b.CAs, c)
			}
			b.CRLs = crls(rt.Config, &cc, ca, now)
			bundles = append(bundles, b)
		}
	}
	return certs, bundles
}

func expiry(t, now time.Time) (int, bool) {
	d := daysLeft(t, now)
	return d, t.Sub(now) < soonDays*24*time.Hour
}

// sans lists a certificate's DNS names, IP addresses, URIs and e-mail addresses.
func sans(c *x509.Certificate) []string {
	out := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	for _, u := range c.URIs {
		out = append(out, u.String())
	}
	return append(out, c.EmailAddresses...)
}

// crls lists a bundle's loaded CRLs by the file or URL each came from; a URL whose CRL
// was never fetched is listed without one.
func crls(cfg *config.Config, cc *config.Certificate, ca *certstore.CA, now time.Time) []CRL {
	sources := map[string]string{} // raw CRL → source
	for _, f := range cc.CRL {
		addSources(sources, cfg.Resolve(f), f, ca)
	}
	urls := certstore.FetchURLs(cc, ca.Certs)
	for _, u := range urls {
		addSources(sources, cfg.CRLCache(u), u, ca)
	}
	out := []CRL{}
	seen := map[string]bool{}
	for _, c := range ca.CRLs.List() {
		l := c.List
		src := sources[string(l.Raw)]
		seen[src] = true
		x := CRL{Issuer: l.Issuer.String(), ThisUpdate: l.ThisUpdate, NextUpdate: l.NextUpdate, Source: src}
		x.Soon = !l.NextUpdate.IsZero() && l.NextUpdate.Sub(now) < 24*time.Hour
		out = append(out, x)
	}
	for _, u := range urls {
		if !seen[u] {
			out = append(out, CRL{Source: u})
		}
	}
	return out
}

// addSources reads the CRLs of a file (as certstore loaded them) to name their source.
func addSources(sources map[string]string, path, source string, ca *certstore.CA) {
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	cs, err := revocation.ParseFile(data, ca.Certs)
	if err != nil {
		return
	}
	for _, c := range cs {
		sources[string(c.List.Raw)] = source
	}
}

// crlFetches adds the last fetch of each URL source. The caller holds r.mu.
func (r *Recorder) crlFetches(bundles []CABundle) {
	for i := range bundles {
		for j := range bundles[i].CRLs {
			if f, ok := r.fetches[bundles[i].CRLs[j].Source]; ok {
				bundles[i].CRLs[j].Fetch = &f
			}
		}
	}
}

// denylist lists the running denylist with what is known of each entry. The caller
// holds r.mu.
func (r *Recorder) denylist(d config.Denylist) []DenyEntry {
	out := []DenyEntry{}
	for _, s := range d.Serials {
		out = append(out, DenyEntry{Kind: "serial", Value: s, DenyNote: r.notes[strings.ToUpper(s)]})
	}
	for _, p := range d.SPKISHA256 {
		out = append(out, DenyEntry{Kind: "spki_sha256", Value: p, DenyNote: r.notes[strings.ToUpper(p)]})
	}
	return out
}

func targets(rt Runtime, now time.Time) []TargetGroup {
	out := []TargetGroup{}
	for _, gc := range rt.Config.TargetGroups {
		g := rt.Groups[gc.ID]
		if g == nil {
			continue
		}
		tg := TargetGroup{ID: g.ID}
		for _, t := range g.Targets {
			x := Target{Address: t.Address, Weight: t.Weight, Health: "up", Open: t.Active()}
			switch {
			case t.Weight == 0:
				x.Health = "drained"
			case !t.Healthy():
				x.Health = "down"
			case t.Ejected(now):
				x.Health = "ejected"
			}
			tg.Targets = append(tg.Targets, x)
		}
		out = append(out, tg)
	}
	return out
}
