package h2proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"tlsgate/internal/httpproxy"
)

// DialFunc connects to a backend address.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Defaults of the per-target pools.
const (
	// MaxStreams is the most streams one backend connection carries at once, below the
	// server's own SETTINGS_MAX_CONCURRENT_STREAMS when that is lower: past it a new
	// connection is opened, so one connection's flow-control window and head-of-line
	// blocking on its TCP stream are shared by at most this many calls.
	MaxStreams = 100
	// dialTimeout bounds connecting plus the TLS handshake to a backend when the route
	// names no connect timeout.
	dialTimeout = 10 * time.Second
	// idleTimeout closes a backend connection that carried no stream for this long.
	idleTimeout = 90 * time.Second
	// pingAfter sends a PING on a connection silent for this long; no answer within
	// pingTimeout closes it, so a backend that vanished without a FIN (a dead host, a
	// dropped NAT entry) does not hold its streams until TCP gives up.
	pingAfter   = 30 * time.Second
	pingTimeout = 15 * time.Second
)

// errClosed is the error of a stream asked of a pool the listener closed.
var errClosed = errors.New("listener shut down")

// key names one target's pool: its address and TLS settings (nil for h2c). A reload
// builds new TLS configs, so a target whose settings changed gets a new pool and the
// old one's connections close when idle.
type key struct {
	addr    string
	tls     *tls.Config
	connect time.Duration // the group's connect_timeout; 0: dialTimeout
}

// pools holds the pool of every target this listener has spoken HTTP/2 to.
type pools struct {
	dial DialFunc
	mu   sync.Mutex
	m    map[key]*pool
}

func (ps *pools) get(k key) *pool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if p := ps.m[k]; p != nil {
		return p
	}
	// A reload makes new keys: forget pools with no connection left.
	for ok, op := range ps.m {
		if op.empty() {
			delete(ps.m, ok)
		}
	}
	p := newPool(k, ps.dial)
	ps.m[k] = p
	return p
}

func (ps *pools) close() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for k, p := range ps.m {
		p.close() // no lock of p is held while ps.mu is: get takes them in this order too
		delete(ps.m, k)
	}
}

// pool is the multiplexed connections to one target. A stream is placed on the first
// connection with a free slot (Reserve respects both MaxStreams and the server's
// limit, and fails on a connection that got GOAWAY or broke); when none has one, a new
// connection is dialled, one dial at a time, whose result every waiting stream shares.
type pool struct {
	tr      *http.Transport
	scheme  string
	addr    string
	connect time.Duration // bounds a dial plus its TLS handshake

	mu      sync.Mutex
	conns   []*http.ClientConn
	dialing *dial // the dial in progress, or nil
	closed  bool

	ctx    context.Context // cancelled by close: stops a dial in progress
	cancel context.CancelFunc
	wg     sync.WaitGroup // the dial in progress
}

// dial is one connection attempt; done is closed when it ends.
type dial struct {
	done chan struct{}
	err  error
}

func newPool(k key, d DialFunc) *pool {
	p := &http.Protocols{}
	scheme := "http"
	var tc *tls.Config
	if k.tls != nil {
		scheme = "https"
		tc = k.tls.Clone()
		tc.NextProtos = []string{"h2"} // a backend that cannot speak h2 fails the handshake
		p.SetHTTP2(true)
	} else {
		p.SetUnencryptedHTTP2(true) // prior knowledge: no HTTP/1.1 Upgrade round trip
	}
	connect := k.connect
	if connect <= 0 {
		connect = dialTimeout
	}
	tr := &http.Transport{
		DialContext:         d,
		TLSClientConfig:     tc,
		TLSHandshakeTimeout: connect,
		Protocols:           p,
		IdleConnTimeout:     idleTimeout,
		// The client's Accept-Encoding and the backend's Content-Encoding pass through
		// unchanged: a transparent gunzip would change what the client receives.
		DisableCompression: true,
		HTTP2:              &http.HTTP2Config{SendPingTimeout: pingAfter, PingTimeout: pingTimeout},
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &pool{tr: tr, scheme: scheme, addr: k.addr, connect: connect, ctx: ctx, cancel: cancel}
}

// get returns a connection with a stream slot reserved for the caller, who must pass it
// to RoundTrip or Release it.
func (p *pool) get(ctx context.Context) (*http.ClientConn, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, errClosed
		}
		if cc := p.reserveLocked(); cc != nil {
			p.mu.Unlock()
			return cc, nil
		}
		d := p.dialing
		if d == nil {
			d = &dial{done: make(chan struct{})}
			p.dialing = d
			p.wg.Go(func() { p.dial(d) })
		}
		p.mu.Unlock()
		select {
		case <-d.done:
			if d.err != nil {
				return nil, d.err
			}
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}

// reserveLocked reserves a slot on a live connection, dropping the dead ones.
func (p *pool) reserveLocked() *http.ClientConn {
	p.pruneLocked()
	for _, cc := range p.conns {
		if cc.InFlight() < MaxStreams && cc.Reserve() == nil {
			return cc
		}
	}
	return nil
}

// pruneLocked drops connections that broke or were closed (idle, GOAWAY answered).
func (p *pool) pruneLocked() {
	live := p.conns[:0]
	for _, cc := range p.conns {
		if cc.Err() == nil {
			live = append(live, cc)
		}
	}
	clear(p.conns[len(live):])
	p.conns = live
}

// dial connects a new connection, not bound to the context of the request that asked
// for it: the streams waiting for it may outlive that request.
func (p *pool) dial(d *dial) {
	ctx, cancel := context.WithTimeout(p.ctx, p.connect)
	defer cancel()
	cc, err := p.tr.NewClientConn(ctx, p.scheme, p.addr)
	if err != nil {
		// The TCP connect or the TLS handshake failed: a connect failure, as for
		// HTTP/1.1 groups, which the listener reports to outlier detection.
		err = &httpproxy.ConnectError{Addr: p.addr, Err: err}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dialing = nil
	d.err = err
	defer close(d.done)
	if err != nil {
		return
	}
	if p.closed {
		_ = cc.Close()
		d.err = errClosed
		return
	}
	p.conns = append(p.conns, cc)
}

func (p *pool) empty() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pruneLocked()
	return len(p.conns) == 0 && p.dialing == nil
}

// close closes every connection (streams still open on them fail) and waits for a dial
// in progress to give up.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	for _, cc := range p.conns {
		_ = cc.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
}
