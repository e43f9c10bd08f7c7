package fleet

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"tlsgate/internal/config"
	"tlsgate/internal/metrics"
	"tlsgate/internal/ticketkeys"
)

// Applier builds, validates and swaps in a configuration, keeping the running one when
// anything fails (the server's reload path).
type Applier interface {
	Apply(cfg *config.Config) error
	// TicketKeys is the ring every listener's session-ticket keys derive from; the
	// node gives it the fleet's master set.
	TicketKeys() *ticketkeys.Ring
	// Reload builds the running configuration again (a CRL the fleet published).
	Reload() error
}

// Node is a tlsgate instance in fleet mode: it loads the fleet's revision (or its cache),
// watches for new ones and hands them to an Applier, and keeps a heartbeat in etcd.
type Node struct {
	node    *config.Config // the node config (admin: and fleet:)
	store   *Store
	log     *slog.Logger
	metrics *metrics.Metrics
	cache   string
	version string
	// rotation is how often the elected node rotates the ticket keys.
	rotation  time.Duration
	wg        sync.WaitGroup
	tickets   []byte // the sealed ticket set last given to the ring
	rotateNow chan struct{}
	leading   atomic.Bool // elected: rotates ticket keys, fetches CRLs

	mu       sync.Mutex
	current  *Revision // the revision serving
	status   Status
	failed   int64             // the newest revision that failed to apply (not retried until a newer one)
	pending  map[string][]byte // the initial revision, cached once it serves (Run)
	prepared *prepared         // an admin API change between Prepare and Write
	writing  int64             // the revision Write is storing and applying (the session leaves it alone)
	wake     chan struct{}
}

// NodeOptions are the edges of a Node.
type NodeOptions struct {
	Log     *slog.Logger
	Metrics *metrics.Metrics
	Version string
	// TicketRotation is how often the fleet's session-ticket master rotates; 0 means
	// DefaultTicketRotation.
	TicketRotation time.Duration
}

// NewNode prepares a node from its node config (which has a fleet section).
func NewNode(node *config.Config, o NodeOptions) (*Node, error) {
	f := node.Fleet
	keys, err := LoadKeys(node.Resolve(f.KeyFile))
	if err != nil {
		return nil, fmt.Errorf("fleet.key_file: %w", err)
	}
	cli, err := Dial(f, node.Resolve, node.ReadSecret)
	if err != nil {
		return nil, err
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = metrics.New()
	}
	return &Node{
		node: node, store: &Store{Client: cli, Prefix: f.Prefix, Keys: keys}, log: o.Log, metrics: o.Metrics,
		cache: node.Resolve(f.CacheDir), version: o.Version, wake: make(chan struct{}, 1),
		rotation: cmp.Or(o.TicketRotation, DefaultTicketRotation), rotateNow: make(chan struct{}, 1),
		status: Status{Instance: f.Instance, State: "ok"},
	}, nil
}

// Store is the node's view of the fleet in etcd.
func (n *Node) Store() *Store { return n.store }

// Close releases the etcd client and waits for the ticket key rotator; call it after
// Run's context has ended.
func (n *Node) Close() error {
	err := n.store.Client.Close()
	n.wg.Wait()
	return err
}

// callTimeout bounds every etcd request of a session: the client waits for a dead
// endpoint in silence, and a session stuck in a request would never notice the outage.
const callTimeout = 5 * time.Second

// bounded runs f with a context that ends after callTimeout.
func bounded(ctx context.Context, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	return f(ctx)
}

// ProbeInterval is how often a connected node checks that etcd still answers.
const ProbeInterval = 2 * time.Second

// StartupTimeout bounds how long Initial waits for etcd before serving from the cache.
var StartupTimeout = 5 * time.Second

// Initial returns the configuration to start with: the fleet's current revision, or
// when etcd cannot be reached the cached one (fail-static). The revision counts as
// applied once Started is called.
func (n *Node) Initial(ctx context.Context) (*config.Config, error) {
	ctx, cancel := context.WithTimeout(ctx, StartupTimeout)
	defer cancel()
	r, sealed, err := n.store.Get(ctx, 0)
	if err == nil {
		cfg, derr := n.localize(r)
		if derr == nil {
			n.mu.Lock()
			n.current, n.pending = r, sealed
			n.mu.Unlock()
			n.takeCRLs(ctx)
			return cfg, nil
		}
		err = derr
	}
	n.log.Warn("fleet: cannot load the current revision from etcd; serving the cached one", "error", err.Error())
	cr, _, cerr := readCache(n.cache, n.store.Keys)
	if cerr != nil {
		return nil, errors.Join(err, cerr)
	}
	cfg, cerr := n.localize(cr)
	if cerr != nil {
		return nil, errors.Join(err, cerr)
	}
	n.mu.Lock()
	n.current = cr
	n.mu.Unlock()
	return cfg, nil
}

// Fallback is the cached revision, for a start whose etcd revision did not build.
func (n *Node) Fallback() (*config.Config, error) {
	r, _, err := readCache(n.cache, n.store.Keys)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	n.current, n.pending = r, nil // the revision from etcd did not start: not cached
	n.mu.Unlock()
	return n.localize(r)
}

// setCurrent records r as applied and caches it.
func (n *Node) setCurrent(r *Revision, sealed map[string][]byte) {
	n.mu.Lock()
	n.current = r
	n.mu.Unlock()
	if sealed != nil {
		if err := writeCache(n.cache, r.Number, sealed); err != nil {
			n.log.Warn("fleet: cannot write the cache; a restart without etcd will not find this revision", "error", err.Error())
		}
	}
}

// localize decodes r for this node: its admin section and bind address.
func (n *Node) localize(r *Revision) (*config.Config, error) {
	cfg, err := r.Decode(n.cache)
	if err != nil {
		return nil, fmt.Errorf("fleet revision %d: %w", r.Number, err)
	}
	Localize(cfg, n.node)
	return cfg, nil
}

// Current returns a fresh copy of the fleet's config as stored (not localized), for the
// admin API to edit: the newest revision in etcd (this node may not have applied it
// yet), or the one serving when etcd cannot be read. Its Revision is the
// compare-and-swap base of Write; its Source reads the revision's files.
func (n *Node) Current() (*config.Config, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r, _, err := n.store.Get(ctx, 0)
	if err != nil {
		n.mu.Lock()
		r = n.current
		n.mu.Unlock()
	}
	if r == nil {
		return nil, errors.New("no fleet revision loaded")
	}
	return r.Decode(n.cache)
}

// Applied returns the revision serving.
func (n *Node) Applied() int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.current == nil {
		return 0
	}
	return n.current.Number
}

// setState records the outcome of applying revision rev ("ok" or "error: …").
func (n *Node) setState(rev int64, state string) Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.status.State != state || n.status.Revision != rev {
		n.status.Since = time.Now().UTC().Truncate(time.Second)
	}
	n.status.State, n.status.Revision, n.status.Version = state, rev, n.version
	return n.status
}
