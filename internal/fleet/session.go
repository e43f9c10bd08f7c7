package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Run keeps the node in step with the fleet until ctx ends: heartbeat, watch, apply.
// With etcd unreachable it keeps serving what it has and retries with backoff, logging
// once per change of state.
func (n *Node) Run(ctx context.Context, a Applier) {
	n.mu.Lock()
	r, sealed := n.current, n.pending
	n.pending = nil
	n.mu.Unlock()
	if sealed != nil {
		n.setCurrent(r, sealed)
	}
	n.setState(n.Applied(), "ok")
	n.metrics.FleetRevision.Set(float64(n.Applied()))
	n.cachedTickets(a.TicketKeys())
	// Close waits for the rotator: a campaign cancelled while etcd is down resigns with
	// the client's own context, which only closing the client ends.
	n.wg.Go(func() { n.rotateLoop(ctx) })
	backoff, connected := 250*time.Millisecond, true
	for ctx.Err() == nil {
		err := n.session(ctx, a, func() {
			backoff = 250 * time.Millisecond
			if !connected {
				n.log.Info("fleet: connected to etcd", "prefix", n.store.Prefix)
			}
			connected = true
		})
		n.metrics.FleetConnected.Set(0)
		if ctx.Err() != nil {
			return
		}
		if connected {
			n.log.Warn("fleet: lost etcd; serving the last applied revision and retrying", "revision", n.Applied(), "error", errString(err))
			connected = false
			// Nobody rotates the fleet's ticket keys meanwhile: the ring rotates them
			// itself again (session_tickets.rotation after the newest), so a long outage
			// does not freeze them; etcd's set takes over again on reconnect.
			a.TicketKeys().ResumeLocal()
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func errString(err error) string {
	if err == nil {
		return "session ended"
	}
	return err.Error()
}

// session is one connected period: a lease for the heartbeat, catch-up, then the watch
// of the head until etcd is lost (the lease's keepalive ends) or ctx ends.
func (n *Node) session(ctx context.Context, a Applier, up func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	gctx, gcancel := context.WithTimeout(ctx, 3*time.Second)
	lease, err := n.store.Client.Grant(gctx, HeartbeatTTL)
	gcancel()
	if err != nil {
		return err
	}
	defer func() {
		rctx, rcancel := context.WithTimeout(context.Background(), time.Second)
		_, _ = n.store.Client.Revoke(rctx, lease.ID)
		rcancel()
	}()
	alive, err := n.store.Client.KeepAlive(ctx, lease.ID)
	if err != nil {
		return err
	}
	n.mu.Lock()
	st := n.status
	n.mu.Unlock()
	if err := bounded(ctx, func(ctx context.Context) error { return n.store.putStatus(ctx, st, lease.ID) }); err != nil {
		return err
	}
	var resp *clientv3.GetResponse
	err = bounded(ctx, func(ctx context.Context) (err error) {
		resp, err = n.store.Client.Get(ctx, n.store.key("head"))
		return err
	})
	if err != nil {
		return err
	}
	n.metrics.FleetConnected.Set(1)
	up()
	head, err := headOf(resp.Kvs)
	if err != nil {
		return err
	}
	n.catchUp(ctx, a, head, lease.ID, true)
	var sealed []byte
	err = bounded(ctx, func(ctx context.Context) (err error) {
		_, sealed, _, err = n.store.Tickets(ctx)
		return err
	})
	if err != nil {
		return err
	}
	n.tickets = nil // given again: the ring may have gone back to local rotation
	n.newTickets(a, sealed)
	if n.takeCRLs(ctx) { // published while this node was away
		_ = a.Reload()
	}
	return n.follow(ctx, a, head, resp.Header.Revision+1, lease.ID, alive)
}

// follow watches the fleet's head and ticket keys from etcd revision from, applying
// what changes, until etcd is lost or ctx ends.
func (n *Node) follow(ctx context.Context, a Applier, head, from int64, lease clientv3.LeaseID, alive <-chan *clientv3.LeaseKeepAliveResponse) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	// Opening a watch blocks while etcd is unreachable, so it is opened aside: the
	// probe below must keep running to notice the outage.
	opened := make(chan clientv3.WatchChan, 1)
	wg.Go(func() {
		opened <- n.store.Client.Watch(clientv3.WithRequireLeader(ctx), n.store.Prefix+"/", clientv3.WithPrefix(), clientv3.WithRev(from))
	})
	var watch clientv3.WatchChan
	// The client retries a dead endpoint in silence and the lease's keepalive channel
	// closes only after long; a probe every ProbeInterval notices the outage quickly.
	probe := time.NewTicker(ProbeInterval)
	defer probe.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case watch = <-opened:
		case <-probe.C:
			h, err := n.probe(ctx)
			if err != nil {
				return err
			}
			head = max(head, h)
		case _, ok := <-alive:
			if !ok {
				return errors.New("the heartbeat lease ended")
			}
		case w, ok := <-watch:
			if !ok || w.Err() != nil {
				return fmt.Errorf("watch ended: %w", w.Err())
			}
			head = max(head, n.events(a, w.Events))
		case <-n.wake:
		}
		n.catchUp(ctx, a, head, lease, false)
	}
}

// probe reads the head: whether etcd still answers, and a change a watch missed.
func (n *Node) probe(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, ProbeInterval)
	defer cancel()
	return n.store.Head(ctx)
}

// events takes the watched changes under the prefix: new ticket keys go to the ring,
// published CRLs to the cache (then a rebuild); it returns the newest head among them
// (0 if none).
func (n *Node) events(a Applier, evs []*clientv3.Event) int64 {
	var head int64
	crls := false
	defer func() {
		if crls {
			_ = a.Reload() // logged by the server; the running config stays on error
		}
	}()
	for _, ev := range evs {
		name := strings.TrimPrefix(string(ev.Kv.Key), n.store.Prefix+"/")
		if strings.HasPrefix(name, crlPrefix) && ev.Type == clientv3.EventTypePut {
			crls = n.takeCRL(name, ev.Kv.Value) || crls
			continue
		}
		switch name {
		case "head":
			if h, err := strconv.ParseInt(string(ev.Kv.Value), 10, 64); err == nil {
				head = max(head, h)
			}
		case ticketsName:
			if ev.Type == clientv3.EventTypePut {
				n.newTickets(a, ev.Kv.Value)
			}
		}
	}
	return head
}

// newTickets gives the ring a ticket set that differs from the last one.
func (n *Node) newTickets(a Applier, sealed []byte) {
	if sealed == nil || bytes.Equal(sealed, n.tickets) {
		return
	}
	n.tickets = sealed
	n.setTickets(a.TicketKeys(), sealed)
}

// catchUp applies revision head when it is newer than the one serving, and brings the
// heartbeat up to date. A revision that failed is retried only after a reconnect (retry
// true) or when a newer one arrives.
func (n *Node) catchUp(ctx context.Context, a Applier, head int64, lease clientv3.LeaseID, retry bool) {
	n.mu.Lock()
	need := head > 0 && (n.current == nil || n.current.Number < head) && (retry || n.failed != head) && n.writing != head
	stale := n.current != nil && n.status.Revision != n.current.Number
	n.mu.Unlock()
	if !need && !stale {
		return
	}
	state := "ok"
	if need {
		err := n.apply(ctx, a, head)
		if fe, ok := errors.AsType[*UnavailableError](err); ok {
			// etcd, not the revision: the session's probe notices an outage; retry then.
			n.log.Debug("fleet: cannot fetch the revision", "revision", head, "error", fe.Error())
			return
		}
		if err != nil {
			state = "error: " + err.Error()
			n.metrics.FleetApplyErrors.Inc()
			n.log.Error("fleet: revision not applied; the running one keeps serving", "revision", head, "serving", n.Applied(), "error", err.Error())
			n.mu.Lock()
			n.failed = head
			n.mu.Unlock()
		} else {
			n.log.Info("fleet: revision applied", "revision", head)
		}
	}
	n.metrics.FleetRevision.Set(float64(n.Applied()))
	st := n.setState(n.Applied(), state)
	if err := bounded(ctx, func(ctx context.Context) error { return n.store.putStatus(ctx, st, lease) }); err != nil {
		n.log.Warn("fleet: cannot write status", "error", err.Error())
	}
}

// apply fetches revision rev, hands it to a, and on success makes it current and caches it.
func (n *Node) apply(ctx context.Context, a Applier, rev int64) error {
	var r *Revision
	var sealed map[string][]byte
	err := bounded(ctx, func(ctx context.Context) (err error) {
		r, sealed, err = n.store.Get(ctx, rev)
		return err
	})

	if err != nil {
		return err
	}
	cfg, err := n.localize(r)
	if err != nil {
		return err
	}
	if err := a.Apply(cfg); err != nil {
		return err
	}
	n.setCurrent(r, sealed)
	return nil
}
