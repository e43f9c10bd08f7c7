package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Status is one live instance's heartbeat, stored under PREFIX/status/INSTANCE with a
// lease: an instance that stops (or loses etcd) drops out after HeartbeatTTL.
type Status struct {
	Instance string `json:"instance"`
	// Revision is the revision it serves.
	Revision int64 `json:"revision"`
	// State is "ok", or "error: MESSAGE" when the newest revision failed to apply here.
	State string `json:"state"`
	// Since is when State (or Revision) last changed.
	Since   time.Time `json:"since"`
	Version string    `json:"version"`
}

// HeartbeatTTL is the lease of a status key, in seconds.
const HeartbeatTTL = 6

// List returns the heartbeat of every live instance, by instance name.
func (s *Store) List(ctx context.Context) ([]Status, error) {
	resp, err := s.Client.Get(ctx, s.key("status/"), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("reading fleet status: %w", err)
	}
	var out []Status
	for _, kv := range resp.Kvs {
		var st Status
		if err := json.Unmarshal(kv.Value, &st); err != nil {
			return nil, fmt.Errorf("%s: %w", kv.Key, err)
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Instance, b.Instance) })
	return out, nil
}

// putStatus writes st under the lease.
func (s *Store) putStatus(ctx context.Context, st Status, lease clientv3.LeaseID) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	_, err = s.Client.Put(ctx, s.key("status/"+st.Instance), string(b), clientv3.WithLease(lease))
	return err
}
