package httpproxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"tlsgate/internal/h1parse"
	"tlsgate/internal/lazytime"
	"tlsgate/internal/rawsock"
)

// DialFunc connects to a backend.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

const (
	backendBuf = 4 << 10
	// sweepEvery is how often idle connections are checked: those the backend closed
	// or that passed their idle timeout are closed, so they do not sit in CLOSE_WAIT
	// holding a file descriptor.
	sweepEvery = time.Second
)

// poolKey is one backend as the pool sees it: an address, in clear or under one TLS
// config (a target group's).
type poolKey struct {
	addr string
	tls  *tls.Config
}

// limits are a target group's pool settings, carried by each connection so that a
// reload's new values apply to the connections made after it.
type limits struct {
	maxIdle     int
	idleTimeout time.Duration
}

// backendConn is one HTTP/1.1 connection to a backend with its buffers.
type backendConn struct {
	conn   net.Conn
	sock   *heldSock // conn under br and bw when it is a plain socket, else nil
	br     *bufio.Reader
	bw     *bufio.Writer
	key    poolKey
	lim    limits
	reused bool  // taken from the pool: it may have been closed by the backend meanwhile
	idleAt int64 // when it was put back, ns since epoch (clock.go)

	// The socket and alive's peek, made once per connection (per check they would be
	// two allocations).
	rc     syscall.RawConn
	peekFn func(fd uintptr) bool
	idle   bool // the peek's outcome
	peek   [1]byte
	rdl    int64 // the read deadline armed, ns since epoch (0: none); see readTimeout
	// abortFn makes the connection's reads fail at once (onCancel), made once.
	abortFn func()
	// hdr is the header map of the connection's responses that h1parse's fast path
	// takes, emptied after each: a map per response would be two allocations.
	hdr http.Header
	// blk is the storage of the connection's responses that the fast path takes, one at
	// a time: a response is done with once copied (forward), before the connection is
	// put back. Its header values went to the client's header in the request's storage.
	blk h1parse.ResponseBlock
}

// reuseFields is the most fields a reused header map may have held: a larger one has
// grown beyond a small map's one group, and every later walk over it would scan the
// larger table.
const reuseFields = 8

// header returns the connection's empty header map for the next response.
func (bc *backendConn) header() http.Header {
	if bc.hdr == nil {
		bc.hdr = make(http.Header, reuseFields)
	}
	return bc.hdr
}

// doneWith empties the header map once resp, which may hold it, is copied to the
// client: its values (slices of resp's own storage) live on in the client's header,
// and no reference to the map is kept.
func (bc *backendConn) doneWith(resp *http.Response) {
	if len(bc.hdr) > reuseFields {
		bc.hdr = nil
		return
	}
	clear(bc.hdr)
	resp.Header = nil
}

// pool keeps idle backend connections, newest last, per backend. A connection is taken
// by one request at a time; there is no goroutine per connection. Instead of a read
// parked on every idle connection (net/http's Transport), a connection is checked
// without blocking when it is taken (closed by the backend: dropped, another taken)
// and a sweep checks them all every second.
type pool struct {
	dial DialFunc

	mu       sync.Mutex
	idle     map[poolKey][]*backendConn
	closed   bool
	sweeping bool
	stop     chan struct{}
	wg       sync.WaitGroup
}

func newPool(dial DialFunc) *pool {
	if dial == nil {
		dial = (&net.Dialer{}).DialContext // bounded by the group's connect_timeout
	}
	return &pool{dial: dial, idle: map[poolKey][]*backendConn{}, stop: make(chan struct{})}
}

// uncheckedFor is how long after its last response an idle connection may be taken
// without alive's peek, by a request that can be sent again (get's retryable): a
// backend closes an idle connection after seconds (nginx 75 s, Apache and Node.js 5 s,
// gunicorn 2 s), so one taken this soon is nearly always alive, and when it was
// closed the request meets the close (a reset, an end) before any response byte and
// goes again on a new connection (forward). The peek, an EAGAIN syscall when the
// connection is alive, is saved on a busy backend's every request.
const uncheckedFor = time.Second

// get returns a live idle connection to key's backend, or dials one (within
// connectTimeout, TLS handshake included) when there is none or fresh is set. A
// connection idle for less than uncheckedFor is returned without alive's check when
// retryable is set: the request may be sent again if the connection turns out closed.
// now is lazytime.Now read by the caller just before (idle ages are counted to it).
func (p *pool) get(ctx context.Context, key poolKey, lim limits, connectTimeout time.Duration, fresh, retryable bool, now int64) (*backendConn, error) {
	for !fresh {
		bc := p.take(key)
		if bc == nil {
			break
		}
		age := time.Duration(now - bc.idleAt)
		if age < bc.lim.idleTimeout && (retryable && age < uncheckedFor || bc.alive()) {
			bc.reused = true
			return bc, nil
		}
		_ = bc.conn.Close()
	}
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	bc, err := p.connect(cctx, key)
	if err != nil {
		return nil, &ConnectError{Addr: key.addr, Err: err}
	}
	bc.lim = lim
	return bc, nil
}

// take removes the newest idle connection to key from the pool, or returns nil.
func (p *pool) take(key poolKey) *backendConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	list := p.idle[key]
	n := len(list)
	if n == 0 {
		return nil
	}
	bc := list[n-1]
	list[n-1] = nil
	p.idle[key] = list[:n-1]
	return bc
}

// ConnectError is a failure to connect to a backend (dial or TLS handshake).
type ConnectError struct {
	Addr string
	Err  error
}

func (e *ConnectError) Error() string { return e.Err.Error() }
func (e *ConnectError) Unwrap() error { return e.Err }

func (p *pool) connect(ctx context.Context, key poolKey) (*backendConn, error) {
	c, err := p.dial(ctx, "tcp", key.addr)
	if err != nil {
		return nil, err
	}
	c = rawsock.Wrap(c) // raw reads and writes: Go's sysmon stays asleep
	var sock *heldSock
	rw := io.ReadWriter(c)
	if rc, ok := c.(*rawsock.Conn); ok && key.tls == nil {
		sock = &heldSock{c: rc}
		rw = sock
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
		c, rw = tc, tc
	}
	return &backendConn{conn: c, sock: sock, br: bufio.NewReaderSize(rw, backendBuf), bw: bufio.NewWriterSize(rw, backendBuf), key: key}, nil
}

// put returns a connection whose last response was read to its end; it is closed
// instead when its target already has its max_idle_per_target idle connections. now is
// lazytime.Now read once the response was read to its end (its idle time starts then).
func (p *pool) put(bc *backendConn, now int64) {
	bc.idleAt = now
	p.mu.Lock()
	if p.closed || len(p.idle[bc.key]) >= bc.lim.maxIdle {
		p.mu.Unlock()
		_ = bc.conn.Close()
		return
	}
	p.idle[bc.key] = append(p.idle[bc.key], bc)
	if !p.sweeping {
		p.sweeping = true
		p.wg.Go(p.sweep)
	}
	p.mu.Unlock()
}

// sweep closes idle connections that the backend closed or that passed their idle
// timeout, every sweepEvery.
func (p *pool) sweep() {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			p.mu.Lock()
			for key, list := range p.idle {
				kept := list[:0]
				for _, bc := range list {
					if time.Duration(lazytime.Of(now)-bc.idleAt) < bc.lim.idleTimeout && bc.alive() {
						kept = append(kept, bc)
					} else {
						_ = bc.conn.Close()
					}
				}
				clear(list[len(kept):])
				if len(kept) == 0 {
					delete(p.idle, key)
				} else {
					p.idle[key] = kept
				}
			}
			p.mu.Unlock()
		}
	}
}

// alive reports whether an idle connection can take a request: its socket has nothing
// to read. An idle HTTP/1.1 connection that became readable was closed by the backend
// (FIN or RST, perhaps after a TLS close_notify) or carries bytes no request asked for
// (a 408): neither can be used. It peeks without blocking and reads nothing; a
// connection whose socket it cannot reach is taken as alive.
func (bc *backendConn) alive() bool {
	if bc.peekFn == nil {
		c := bc.conn
		if tc, ok := c.(*tls.Conn); ok {
			c = tc.NetConn()
		}
		sc, ok := c.(syscall.Conn)
		if !ok {
			return true
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			return false
		}
		bc.rc, bc.peekFn = rc, bc.peekOnce
	}
	bc.idle = true
	err := bc.rc.Read(bc.peekFn)
	return bc.idle && err == nil
}

func (bc *backendConn) peekOnce(fd uintptr) bool {
	bc.idle = rawsock.PeekFD(fd, &bc.peek) == syscall.EAGAIN // nothing to read: idle as it should be
	return true
}

// close closes the idle connections and stops the sweeper; connections in use are
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
