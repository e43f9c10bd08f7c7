package httpproxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"
)

// DialFunc connects to a backend.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

const (
	idleTimeout   = 90 * time.Second // a pooled backend connection unused this long is closed
	maxIdlePerKey = 256
	backendBuf    = 4 << 10
)

// poolKey is one backend as the pool sees it: an address, in clear or under one TLS
// config (a target group's).
type poolKey struct {
	addr string
	tls  *tls.Config
}

// backendConn is one HTTP/1.1 connection to a backend with its buffers.
type backendConn struct {
	conn   net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	key    poolKey
	reused bool // taken from the pool: it may have been closed by the backend meanwhile
	idleAt time.Time
}

// pool keeps idle backend connections, newest last, per backend. A connection is taken
// by one request at a time; there is no goroutine per connection.
type pool struct {
	dial DialFunc

	mu      sync.Mutex
	idle    map[poolKey][]*backendConn
	closed  bool
	reaping bool
	stop    chan struct{}
	wg      sync.WaitGroup
}

func newPool(dial DialFunc) *pool {
	if dial == nil {
		d := &net.Dialer{Timeout: 10 * time.Second}
		dial = d.DialContext
	}
	return &pool{dial: dial, idle: map[poolKey][]*backendConn{}, stop: make(chan struct{})}
}

// get returns an idle connection to key's backend, or dials one.
func (p *pool) get(ctx context.Context, key poolKey) (*backendConn, error) {
	now := time.Now()
	p.mu.Lock()
	list := p.idle[key]
	if n := len(list); n > 0 {
		bc := list[n-1]
		list[n-1] = nil
		p.idle[key] = list[:n-1]
		p.mu.Unlock()
		if now.Sub(bc.idleAt) < idleTimeout {
			bc.reused = true
			return bc, nil
		}
		// The newest is stale, so are the older ones: the reaper will take them.
		_ = bc.conn.Close()
	} else {
		p.mu.Unlock()
	}
	return p.connect(ctx, key)
}

func (p *pool) connect(ctx context.Context, key poolKey) (*backendConn, error) {
	c, err := p.dial(ctx, "tcp", key.addr)
	if err != nil {
		return nil, err
	}
	if key.tls != nil {
		cfg := key.tls
		if cfg.ServerName == "" {
			host, _, _ := net.SplitHostPort(key.addr)
			cfg = cfg.Clone()
			cfg.ServerName = host
		}
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("TLS to backend %s: %w", key.addr, err)
		}
		c = tc
	}
	return &backendConn{conn: c, br: bufio.NewReaderSize(c, backendBuf), bw: bufio.NewWriterSize(c, backendBuf), key: key}, nil
}

// put returns a connection whose last response was read to its end.
func (p *pool) put(bc *backendConn) {
	bc.idleAt = time.Now()
	p.mu.Lock()
	if p.closed || len(p.idle[bc.key]) >= maxIdlePerKey {
		p.mu.Unlock()
		_ = bc.conn.Close()
		return
	}
	p.idle[bc.key] = append(p.idle[bc.key], bc)
	if !p.reaping {
		p.reaping = true
		p.wg.Go(p.reap)
	}
	p.mu.Unlock()
}

// reap closes connections idle for longer than idleTimeout, so a backend's closed
// keep-alive connections do not linger here in CLOSE_WAIT.
func (p *pool) reap() {
	t := time.NewTicker(idleTimeout / 3)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			p.mu.Lock()
			for key, list := range p.idle {
				i := 0
				for i < len(list) && now.Sub(list[i].idleAt) >= idleTimeout {
					_ = list[i].conn.Close()
					i++
				}
				if i == len(list) {
					delete(p.idle, key)
				} else if i > 0 {
					p.idle[key] = append(list[:0], list[i:]...)
				}
			}
			p.mu.Unlock()
		}
	}
}

// close closes the idle connections and stops the reaper; connections in use are
// closed when their request ends.
func (p *pool) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	for _, list := range p.idle {
		for _, bc := range list {
			_ = bc.conn.Close()
		}
	}
	p.idle = nil
	close(p.stop)
	p.mu.Unlock()
	p.wg.Wait()
}
