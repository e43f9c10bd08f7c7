package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"tlsgate/internal/ticketkeys"
)

// The fleet's session-ticket master keys live at PREFIX/tickets, sealed: every node
// derives the same per-policy keys from them (ticketkeys, HKDF over the policy
// identity), so a client resumes on any node and policies stay apart as on one node.
// One node, elected through PREFIX/election, rotates them.
const (
	ticketsName = "tickets"
	// DefaultTicketRotation is how often the elected node draws a new master.
	DefaultTicketRotation = time.Hour
	// ticketsKept is the newest master and the previous two, which still decrypt.
	ticketsKept = 3
)

// ticketsCache is the last ticket set seen, sealed as in etcd: a node restarted while
// etcd is down still resumes the fleet's sessions.
const ticketsCache = "tickets.sealed"

type storedMaster struct {
	Secret  []byte    `json:"secret"`
	Created time.Time `json:"created"`
}

// Tickets reads the fleet's master set (newest first) and its etcd mod revision (0:
// none stored yet).
func (s *Store) Tickets(ctx context.Context) ([]ticketkeys.Master, []byte, int64, error) {
	resp, err := s.Client.Get(ctx, s.key(ticketsName))
	if err != nil {
		return nil, nil, 0, fmt.Errorf("reading the ticket keys: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil, 0, nil
	}
	kv := resp.Kvs[0]
	ms, err := s.openTickets(kv.Value)
	return ms, kv.Value, kv.ModRevision, err
}

func (s *Store) openTickets(sealed []byte) ([]ticketkeys.Master, error) {
	plain, err := s.Keys.Open(ticketsName, sealed)
	if err != nil {
		return nil, err
	}
	var stored []storedMaster
	if err := json.Unmarshal(plain, &stored); err != nil {
		return nil, fmt.Errorf("the ticket keys: %w", err)
	}
	ms := make([]ticketkeys.Master, 0, len(stored))
	for _, m := range stored {
		if len(m.Secret) != 32 {
			return nil, errors.New("the ticket keys: a master is not 32 bytes")
		}
		ms = append(ms, ticketkeys.Master{Secret: [32]byte(m.Secret), Created: m.Created})
	}
	slices.SortStableFunc(ms, func(a, b ticketkeys.Master) int { return b.Created.Compare(a.Created) })
	return ms, nil
}

// putTickets stores ms if the key is still at mod revision mod (compare-and-swap).
func (s *Store) putTickets(ctx context.Context, ms []ticketkeys.Master, mod int64) (bool, error) {
	stored := make([]storedMaster, len(ms))
	for i, m := range ms {
		stored[i] = storedMaster{Secret: m.Secret[:], Created: m.Created}
	}
	plain, err := json.Marshal(stored)
	if err != nil {
		return false, err
	}
	k := s.key(ticketsName)
	resp, err := s.Client.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(k), "=", mod)).
		Then(clientv3.OpPut(k, string(s.Keys.Seal(ticketsName, plain)))).Commit()
	if err != nil {
		return false, fmt.Errorf("storing the ticket keys: %w", err)
	}
	return resp.Succeeded, nil
}

// setTickets hands a sealed ticket set to the ring and caches it.
func (n *Node) setTickets(ring *ticketkeys.Ring, sealed []byte) {
	ms, err := n.store.openTickets(sealed)
	if err == nil {
		err = ring.SetMasters(ms)
	}
	if err != nil {
		n.log.Error("fleet: the fleet's session ticket keys cannot be used; keeping the current ones", "error", err.Error())
		return
	}
	if err := os.MkdirAll(n.cache, 0o700); err == nil {
		err = writeFileAtomic(filepath.Join(n.cache, ticketsCache), sealed)
		if err != nil {
			n.log.Warn("fleet: cannot cache the ticket keys", "error", err.Error())
		}
	}
}

// cachedTickets gives the ring the ticket set of the cache, if any.
func (n *Node) cachedTickets(ring *ticketkeys.Ring) {
	if b, err := os.ReadFile(filepath.Join(n.cache, ticketsCache)); err == nil {
		n.setTickets(ring, b)
	}
}

// rotateLoop campaigns for the rotator's role until ctx ends; the elected node rotates.
func (n *Node) rotateLoop(ctx context.Context) {
	backoff := 250 * time.Millisecond
	for ctx.Err() == nil {
		err := n.lead(ctx)
		if ctx.Err() != nil {
			return
		}
		n.log.Debug("fleet: ticket key rotator stopped; campaigning again", "error", errString(err))
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

// lead campaigns and, once elected, rotates the ticket set when it is due, until the
// election session ends (etcd lost) or ctx ends.
func (n *Node) lead(ctx context.Context) error {
	sess, err := concurrency.NewSession(n.store.Client, concurrency.WithTTL(HeartbeatTTL), concurrency.WithContext(ctx))
	if err != nil {
		return err
	}
	defer sess.Close()
	el := concurrency.NewElection(sess, n.store.key("election"))
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-sess.Done():
			cancel()
		case <-cctx.Done():
		}
	}()
	if err := el.Campaign(cctx, n.status.Instance); err != nil {
		return err
	}
	n.log.Info("fleet: elected to rotate the session ticket keys and fetch CRLs", "every", n.rotation.String())
	n.leading.Store(true)
	defer n.leading.Store(false)
	force := false
	for {
		wait, err := n.rotate(cctx, force)
		if err != nil {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-cctx.Done():
			t.Stop()
			return errors.New("the election session ended")
		case <-t.C:
			force = false
		case <-n.rotateNow:
			t.Stop()
			force = true
		}
	}
}

// RotateNow makes the elected node draw a new ticket master at once (a node that is
// not elected ignores it): for an operator who suspects a key leaked, and for tests.
func (n *Node) RotateNow() {
	select {
	case n.rotateNow <- struct{}{}:
	default:
	}
}

// rotate draws a new master when the newest is older than the rotation period (or
// there is none) and keeps the previous two; it returns when the next one is due.
func (n *Node) rotate(ctx context.Context, force bool) (time.Duration, error) {
	ms, _, mod, err := n.store.Tickets(ctx)
	if err != nil {
		return 0, err
	}
	now := time.Now()
	if len(ms) > 0 && !force && now.Before(ms[0].Created.Add(n.rotation)) {
		return ms[0].Created.Add(n.rotation).Sub(now), nil
	}
	if len(ms) > 0 && !now.After(ms[0].Created) {
		now = ms[0].Created.Add(time.Millisecond) // newest first, even on a coarse clock
	}
	next := append([]ticketkeys.Master{ticketkeys.NewMaster(now)}, ms...)
	next = next[:min(len(next), ticketsKept)]
	ok, err := n.store.putTickets(ctx, next, mod)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 100 * time.Millisecond, nil // changed meanwhile: read again
	}
	n.log.Info("fleet: session ticket keys rotated", "newest", next[0], "keys", len(next))
	return n.rotation, nil
}
