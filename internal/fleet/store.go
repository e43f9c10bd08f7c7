package fleet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"tlsgate/internal/config"
)

// Keep is how many revisions stay in etcd (older ones are deleted by the push that
// makes them older): enough to pull a recent one back, small enough for etcd.
const Keep = 5

// Store is a fleet's keys in etcd under one prefix.
type Store struct {
	Client *clientv3.Client
	Prefix string
	Keys   *Keys
}

// Dial connects to etcd as the fleet section says. Connecting is lazy: an unreachable
// etcd shows on the first request, not here.
func Dial(f *config.Fleet, resolve func(string) string, secret func(string) (string, error)) (*clientv3.Client, error) {
	cc := clientv3.Config{Endpoints: f.Etcd, DialTimeout: 3 * time.Second, DialKeepAliveTime: 5 * time.Second, DialKeepAliveTimeout: 3 * time.Second, Logger: nopLogger()}
	if f.CA != "" || f.Cert != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if f.CA != "" {
			pem, err := os.ReadFile(resolve(f.CA))
			if err != nil {
				return nil, fmt.Errorf("fleet.ca: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("fleet.ca: %s holds no PEM certificate", f.CA)
			}
		}
		if f.Cert != "" {
			c, err := tls.LoadX509KeyPair(resolve(f.Cert), resolve(f.Key))
			if err != nil {
				return nil, fmt.Errorf("fleet.cert: %w", err)
			}
			tc.Certificates = []tls.Certificate{c}
		}
		cc.TLS = tc
	}
	if f.Username != "" {
		pw, err := secret(f.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("fleet.password_file: %w", err)
		}
		cc.Username, cc.Password = f.Username, pw
	}
	return clientv3.New(cc)
}

func (s *Store) key(name string) string { return s.Prefix + "/" + name }

func revPrefix(n int64) string { return fmt.Sprintf("rev/%d/", n) }

// ErrConflict is a compare-and-swap that lost: the fleet is not at the expected revision.
var ErrConflict = errors.New("the fleet moved on")

// UnavailableError is a request etcd did not answer (unreachable, timed out), as
// opposed to an answer that is wrong: a node retries the first, reports the second.
type UnavailableError struct{ Err error }

func (e *UnavailableError) Error() string { return e.Err.Error() }

// Unwrap returns the client's error.
func (e *UnavailableError) Unwrap() error { return e.Err }

// ConflictError says which revision the fleet is at.
type ConflictError struct{ Expected, Current int64 }

func (e *ConflictError) Error() string {
	return fmt.Sprintf("the fleet is at revision %d, not %d: nothing stored (pull, merge, push again)", e.Current, e.Expected)
}

// Conflict marks the error for callers that do not import fleet (the server retries
// the admin API's change on the newer revision).
func (e *ConflictError) Conflict() bool { return true }

// Unwrap makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// Head returns the current revision number (0 when nothing was pushed) and the etcd
// revision of that read.
func (s *Store) Head(ctx context.Context) (int64, error) {
	resp, err := s.Client.Get(ctx, s.key("head"))
	if err != nil {
		return 0, &UnavailableError{fmt.Errorf("reading the fleet head: %w", err)}
	}
	return headOf(resp.Kvs)
}

func headOf(kvs []*mvccpbKV) (int64, error) {
	if len(kvs) == 0 {
		return 0, nil
	}
	n, err := strconv.ParseInt(string(kvs[0].Value), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("the fleet head holds %q, not a revision number", kvs[0].Value)
	}
	return n, nil
}

// Push stores r as the next revision in one transaction and returns its number. With
// expect >= 0 it is a compare-and-swap: it stores only when the fleet is at revision
// expect (0: nothing pushed yet). With expect < 0 it stores after whatever is current,
// retrying when another push got in between.
func (s *Store) Push(ctx context.Context, r *Revision, expect int64) (int64, error) {
	for {
		cur, err := s.Head(ctx)
		if err != nil {
			return 0, err
		}
		if expect >= 0 && cur != expect {
			return 0, &ConflictError{Expected: expect, Current: cur}
		}
		n := cur + 1
		ops := []clientv3.Op{clientv3.OpPut(s.key("head"), strconv.FormatInt(n, 10))}
		ops = append(ops, s.sealedOps(n, r)...)
		if old := n - Keep; old > 0 {
			ops = append(ops, clientv3.OpDelete(s.key(revPrefix(old)), clientv3.WithPrefix()))
		}
		var cmp clientv3.Cmp
		if cur == 0 {
			cmp = clientv3.Compare(clientv3.CreateRevision(s.key("head")), "=", 0)
		} else {
			cmp = clientv3.Compare(clientv3.Value(s.key("head")), "=", strconv.FormatInt(cur, 10))
		}
		resp, err := s.Client.Txn(ctx).If(cmp).Then(ops...).Commit()
		if err != nil {
			return 0, fmt.Errorf("storing revision %d: %w", n, err)
		}
		if resp.Succeeded {
			return n, nil
		}
		if expect >= 0 {
			now, _ := s.Head(ctx)
			return 0, &ConflictError{Expected: expect, Current: now}
		}
	}
}

// sealedOps are the puts of revision n: its config and files, each sealed.
func (s *Store) sealedOps(n int64, r *Revision) []clientv3.Op {
	var ops []clientv3.Op
	for name, v := range s.seal(n, r) {
		ops = append(ops, clientv3.OpPut(s.key(name), string(v)))
	}
	return ops
}

// Get reads revision n (0: the current one). It returns the sealed values too, by name
// relative to the prefix, for the node's cache.
func (s *Store) Get(ctx context.Context, n int64) (*Revision, map[string][]byte, error) {
	if n == 0 {
		var err error
		if n, err = s.Head(ctx); err != nil {
			return nil, nil, err
		}
		if n == 0 {
			return nil, nil, errors.New("nothing pushed to this fleet yet (tlsgate fleet push)")
		}
	}
	resp, err := s.Client.Get(ctx, s.key(revPrefix(n)), clientv3.WithPrefix())
	if err != nil {
		return nil, nil, &UnavailableError{fmt.Errorf("reading revision %d: %w", n, err)}
	}
	sealed := map[string][]byte{}
	for _, kv := range resp.Kvs {
		sealed[strings.TrimPrefix(string(kv.Key), s.Prefix+"/")] = kv.Value
	}
	r, err := Open(s.Keys, n, sealed)
	return r, sealed, err
}

// Open decrypts the sealed values of revision n into a Revision.
func Open(k *Keys, n int64, sealed map[string][]byte) (*Revision, error) {
	r := &Revision{Number: n, Files: map[string][]byte{}}
	pre := revPrefix(n)
	for name, v := range sealed {
		rest, ok := strings.CutPrefix(name, pre)
		if !ok {
			continue
		}
		plain, err := k.Open(name, v)
		if err != nil {
			return nil, err
		}
		if rest == "config" {
			r.Config = plain
		} else if p, ok := strings.CutPrefix(rest, "files/"); ok {
			r.Files[p] = plain
		}
	}
	if r.Config == nil {
		return nil, fmt.Errorf("revision %d is not in the store (only the last %d are kept)", n, Keep)
	}
	return r, nil
}
