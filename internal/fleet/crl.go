package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"tlsgate/internal/config"
)

// CRLs fetched from URLs (crl_urls, crl_fetch_cdp) are shared through PREFIX/crl/HASH:
// the elected node fetches them and publishes each new one; every node writes it to its
// CRL cache (under cache_dir, where the revision's config looks) and rebuilds. So a
// fleet of N nodes asks the CA once per refresh, not N times.
const crlPrefix = "crl/"

type storedCRL struct {
	URL string `json:"url"`
	CRL []byte `json:"crl"`
}

// FetchesCRLs reports whether this node is the elected one, which fetches CRLs for all.
func (n *Node) FetchesCRLs() bool { return n.leading.Load() }

// PublishCRL stores a CRL this node fetched from url for the other nodes.
func (n *Node) PublishCRL(url string, data []byte) {
	plain, err := json.Marshal(storedCRL{URL: url, CRL: data})
	if err != nil {
		return
	}
	name := crlPrefix + n.crlCache(url)
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if _, err := n.store.Client.Put(ctx, n.store.key(name), string(n.store.Keys.Seal(name, plain))); err != nil {
		n.log.Warn("fleet: cannot publish a fetched CRL; the other nodes fetch it themselves", "url", url, "error", err.Error())
	}
}

// crlCache is the cache file name of url's CRL, as config.CRLCache names it.
func (n *Node) crlCache(url string) string {
	return filepath.Base((&config.Config{Dir: n.cache}).CRLCache(url))
}

// takeCRL writes a published CRL into this node's CRL cache; it reports whether the
// cache changed (then the running configuration is rebuilt to load it).
func (n *Node) takeCRL(name string, sealed []byte) bool {
	plain, err := n.store.Keys.Open(name, sealed)
	var c storedCRL
	if err == nil {
		err = json.Unmarshal(plain, &c)
	}
	if err != nil {
		n.log.Error("fleet: a published CRL cannot be used", "key", name, "error", err.Error())
		return false
	}
	path := (&config.Config{Dir: n.cache}).CRLCache(c.URL)
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, c.CRL) {
		return false
	}
	err = os.MkdirAll(filepath.Dir(path), 0o700)
	if err == nil {
		err = writeFileAtomic(path, c.CRL)
	}
	if err != nil {
		n.log.Warn("fleet: cannot cache a published CRL", "url", c.URL, "error", err.Error())
		return false
	}
	n.log.Info("fleet: CRL taken from the fleet", "url", c.URL)
	return true
}

// takeCRLs writes every published CRL into the cache (before the first build, so a
// starting node does not fetch what the fleet already has).
func (n *Node) takeCRLs(ctx context.Context) bool {
	var resp *clientv3.GetResponse
	err := bounded(ctx, func(ctx context.Context) (err error) {
		resp, err = n.store.Client.Get(ctx, n.store.key(crlPrefix), clientv3.WithPrefix())
		return err
	})
	if err != nil {
		return false
	}
	changed := false
	for _, kv := range resp.Kvs {
		if n.takeCRL(strings.TrimPrefix(string(kv.Key), n.store.Prefix+"/"), kv.Value) {
			changed = true
		}
	}
	return changed
}
