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
	// idleTimeout closes a backend connection that carried no stream for this long,
	// when the route names no idle_timeout.
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
	idle    time.Duration // the group's idle_timeout; 0: idleTimeout and no cap
	maxIdle int           // the group's max_idle_per_target (with idle set)
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
	maxIdle int           // connections without a stream kept; -1: no cap

	mu      sync.Mutex
	conns   []*http.ClientConn
	fresh   map[*http.ClientConn]bool // with a cap: connections no stream was reserved on yet
	dialing *dial                     // the dial in progress, or nil
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
	idle, maxIdle := k.idle, k.maxIdle
	if idle <= 0 {
		idle, maxIdle = idleTimeout, -1
	}
	tr := &http.Transport{
		DialContext:         d,
		TLSClientConfig:     tc,
		TLSHandshakeTimeout: connect,
		Protocols:           p,
		IdleConnTimeout:     idle, // net/http's HTTP/2 client closes a connection idle this long
		// The client's Accept-Encoding and the backend's Content-Encoding pass through
		// unchanged: a transparent gunzip would change what the client receives.
		DisableCompression: true,
		HTTP2:              &http.HTTP2Config{SendPingTimeout: pingAfter, PingTimeout: pingTimeout},
	}
	ctx, cancel := context.WithCancel(context.Background())
	pl := &pool{tr: tr, scheme: scheme, addr: k.addr, connect: connect, maxIdle: max(maxIdle, -1), ctx: ctx, cancel: cancel}
	if pl.maxIdle >= 0 {
		pl.fresh = map[*http.ClientConn]bool{}
	}
	return pl
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
			if p.fresh != nil {
				delete(p.fresh, cc)
			}
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
		} else if p.fresh != nil {
			delete(p.fresh, cc)
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
	p.dialing = nil
	d.err = err
	if err == nil && p.closed {
		d.err = errClosed
	}
	if d.err == nil {
		p.conns = append(p.conns, cc)
		if p.fresh != nil {
			p.fresh[cc] = true // not trimmed before the streams waiting for it had it
		}
	}
	p.mu.Unlock()
	// Outside p.mu: a ClientConn runs its state hook within Close and SetStateHook.
	switch {
	case err != nil:
	case d.err != nil:
		_ = cc.Close()
	case p.maxIdle >= 0:
		cc.SetStateHook(p.idled)
	}
	close(d.done)
}

// idled is the state hook of a connection (with a max_idle_per_target): when its last
// stream ended, the connections without a stream past the cap are closed. The hook may
// run inside a call made under p.mu (Reserve, Close); it never waits for p.mu there,
// handing the trim to a goroutine instead.
func (p *pool) idled(cc *http.ClientConn) {
	if cc.InFlight() > 0 || cc.Err() != nil {
		return
	}
	if !p.mu.TryLock() {
		go p.trim()
		return
	}
	defer p.mu.Unlock()
	p.trimLocked()
}

func (p *pool) trim() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.trimLocked()
}

// trimLocked closes the connections without a stream past the first maxIdle. A
// stream is only reserved under p.mu, so none starts on a connection being closed.
func (p *pool) trimLocked() {
	if p.maxIdle < 0 {
		return
	}
	p.pruneLocked()
	idle := 0
	for _, cc := range p.conns {
		if cc.InFlight() == 0 && !p.fresh[cc] {
			if idle++; idle > p.maxIdle {
				_ = cc.Close()
			}
		}
	}
	p.pruneLocked()
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
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, cc := range conns {
		_ = cc.Close() // outside p.mu: Close runs the connection's state hook
	}
	p.cancel()
	p.wg.Wait()
}
