package listener

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"tlsgate/internal/h1parse"
)

// HTTP/1.x is served by this loop rather than by net/http: a connection's goroutine
// waits for the first byte of a request, a worker goroutine reads the request, runs the
// handler and writes the response, with buffers taken from pools only while requests are
// in flight. An idle keep-alive connection holds its TLS state, a small struct and a
// goroutine with a small stack, nothing more. HTTP/2 connections (ALPN h2) still go to
// the listener's http.Server.

const (
	// maxDiscard is how much of a request body the handler left unread is read and
	// thrown away to keep the connection; beyond it the connection is closed.
	maxDiscard = 256 << 10
	h1Buf      = 4 << 10
)

var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, h1Buf) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, h1Buf) }}
	// headers are responses' header maps, made as small maps (one group of 8 slots): a
	// walk over a map made for 16 scans its larger table (4 groups) on every response.
	// One that grew stays grown in the pool.
	headers = sync.Pool{New: func() any { return make(http.Header, reuseFields) }}
	// reqHeaders are the header maps of requests h1parse's fast path reads (a map per
	// request would be two allocations), back once a request is served.
	reqHeaders = sync.Pool{New: func() any { return make(http.Header, reuseFields) }}
)

// reuseFields is the most fields a request's header map may have held to be reused: a
// larger one has grown beyond a small map's one group, and every walk over it (the
// checks, the copy to the backend) would scan the larger table.
const reuseFields = 8

// Connection states, for drain: an idle connection is closed at once, an active one
// after its response. A fresh one (no request yet) gets to make one request, answered
// with Connection: close: its client had no reason to expect a close, and would see a
// failure where a reused connection's client retries (a binary upgrade drains the old
// process while it still accepts nothing but what it has).
// freshGrace is how long a drain waits for the first request of a fresh connection.
const freshGrace = 2 * time.Second

const (
	h1Idle int32 = iota
	h1Active
	h1Closing
	h1Fresh // accepted, no request read yet
	h1Last  // fresh when drain began: one request, then close
)

// h1conn is one HTTP/1.x client connection.
type h1conn struct {
	c     net.Conn
	state atomic.Int32
	// writeTimeout closes a connection whose client accepted nothing for this long
	// (it stopped reading a response): each write to the socket may take this long.
	writeTimeout time.Duration
	done         chan struct{}          // the worker finished this connection's requests
	stayed       bool                   // the worker waited stayWindow for a next request, in vain
	linger       bool                   // the client's input may be unread: close lingering (linger.go)
	req          atomic.Pointer[reqCtx] // the context of the request at its backend, for cancelRequests
	kept         keptBufs               // what the worker's current run of requests keeps
	// in feeds the pooled reader: the byte that ended the idle wait, then the
	// connection; while a header block is read, scan checks its bytes (h1header.go).
	in struct {
		first    [1]byte
		hasByte  bool
		scanning bool
		scan     headerScan
		// fast: the last request read was h1parse's (its field names are tokens), req.
		fast bool
		req  *h1parse.Request
		// lent: req's strings are views of the run's head storage (keptBufs.requestHead);
		// held: something may keep the request beyond serveOne (heldBeyond).
		lent, held bool
	}
}

func (h *h1conn) Read(p []byte) (int, error) {
	if h.in.scanning && h.in.scan.err != nil {
		// The scan's error stays: a reader that took it once (h1parse's first-line read)
		// must not wait on the socket for bytes the client will never send.
		return 0, h.in.scan.err
	}
	if len(p) > 0 && h.in.hasByte {
		p[0], h.in.hasByte = h.in.first[0], false
		return h.scanned(p, 1, nil)
	}
	n, err := h.c.Read(p)
	return h.scanned(p, n, err)
}

// Write writes a response to the socket under the write timeout.
func (h *h1conn) Write(p []byte) (int, error) {
	if h.writeTimeout > 0 {
		if s := socketOf(h.c); s != nil {
			s.writeTimeout(h.writeTimeout) // lazily (deadline.go)
		} else {
			_ = h.c.SetWriteDeadline(time.Now().Add(h.writeTimeout))
		}
	}
	return h.c.Write(p)
}

// scanned passes bytes read while a header block is read through the scan; its error
// replaces them.
func (h *h1conn) scanned(p []byte, n int, err error) (int, error) {
	if h.in.scanning && n > 0 {
		if serr := h.in.scan.feed(p[:n]); serr != nil {
			return 0, serr
		}
	}
	return n, err
}

// readRequest reads one request's header block under the listener's limits and the
// process's header budget. A common request whose head is buffered whole is taken by
// h1parse's fast path, which declines heads that need the scan (bare LF, obs-fold,
// Transfer-Encoding) and heads past the limits; its bytes are only counted against the
// budget. Anything else is scanned byte by byte as it is read (bytes a pipelining
// client sent already, first) and goes to net/http.
// hdr is an empty map that becomes the header of a request the fast path takes.
func (l *Listener) readRequest(h *h1conn, br *bufio.Reader, st *State, hdr http.Header) (*http.Request, error) {
	s := &h.in.scan
	s.reset(st.HeaderLimits, l.deps.HeaderBudget)
	defer s.release()
	lim := h1parse.Limits{Bytes: s.lim.Bytes, Fields: s.lim.Fields, LineBytes: s.lim.FieldBytes}
	fr, n, err := h1parse.ReadFast(br, hdr, lim, h.kept.requestHead()[:])
	h.in.fast, h.in.req = fr != nil, fr
	h.in.lent, h.in.held = fr != nil && fr.Lent(), false
	switch {
	case err != nil:
		return nil, err
	case fr != nil:
		// The head's bytes count against the budget as a scanned block's do.
		if !s.budget.take(int64(n)) {
			return nil, errHeaderBudget
		}
		s.reserved = int64(n)
		return &fr.Request, nil
	}
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		if err := s.feed(b); err != nil {
			return nil, err
		}
	}
	h.in.scanning = true
	r, err := http.ReadRequest(br)
	h.in.scanning = false
	if err != nil && s.err != nil {
		// bufio hands a partial line over without the read error that cut it, so the
		// parser may have failed on that line first: the scan's reason is the real one.
		return nil, s.err
	}
	if err == nil && s.te && !r.ProtoAtLeast(1, 1) {
		// net/http ignores it; a front may not have (RFC 9112 §6.1).
		return nil, errTE10
	}
	return r, err
}

// serveH1 serves HTTP/1.x requests on c until the client or a timeout ends it. This
// goroutine only waits for requests; reading, proxying and logging them run on a
// worker (worker.go), so the stack a parked keep-alive connection keeps stays small.
func (l *Listener) serveH1(h *h1conn, info *connInfo) {
	c := h.c
	if !l.track(h) {
		_ = c.Close()
		return
	}
	defer l.untrack(h)
	var (
		br  *bufio.Reader
		end h1End
	)
	defer func() {
		if end == h1Hijacked {
			return // the upgrade's copiers may still hold the reader and the connection
		}
		if br != nil {
			readers.Put(br)
		}
		if tc, ok := c.(*tls.Conn); ok && end == h1PeerClosed {
			// The client closed first: a close_notify now would meet a closed socket.
			_ = tc.NetConn().Close()
			return
		}
		if h.linger && end == h1Close {
			l.closeLingering(c, info.state.ID)
			return
		}
		_ = c.Close()
	}()
	// What a worker runs for each request; made once per connection, not per request.
	serve := func() {
		if end = h1Again; !h.in.hasByte {
			end = readFirst(h)
		}
		if end == h1Again {
			br = readers.Get().(*bufio.Reader)
			br.Reset(h)
			if end = l.serveBuffered(h, br, info); end == h1Again {
				end = l.stay(h, br, info)
			}
			h.kept.release()
		}
		h.done <- struct{}{}
	}
	sock := socketOf(c)
	wait := info.state.HeaderTimeout // the first request must come within the header timeout
	for first := true; ; first = false {
		// Idle: hold no buffer, and wait on the socket itself where there is one (a
		// TLS read would grow this goroutine's stack for the decryption), so no worker
		// is parked in a read. TLS's buffer was checked before: for the first request
		// by newH1conn (it may have come with the handshake's last flight), later by
		// serveBuffered.
		if first && h.state.Load() == h1Last {
			wait = min(wait, freshGrace) // a drain began (drainConn)
		}
		setDeadline(c, wait)
		if h.state.Load() == h1Closing {
			return // drained between the response and setDeadline, which undid its wake-up
		}
		if sock != nil && !h.in.hasByte && !sock.readable() {
			return
		}
		l.dispatch(serve) // and wait for it
		<-h.done
		if end == h1NotReady {
			continue // a wake-up for bytes already read: wait again
		}
		if end != h1Again {
			return
		}
		readers.Put(br)
		br = nil
		wait = info.state.IdleTimeout
		if h.stayed {
			wait -= stayWindow // the worker waited that long already
			h.stayed = false
		}
	}
}

// newH1conn makes the HTTP/1.x state of a connection that finished its handshake and
// takes from TLS's buffer a first request byte that came with the handshake's last
// flight. Called on the worker that ran the handshake: that read would grow the small
// stack of the connection's own goroutine, which then waits on the socket alone, and
// a connection that sends nothing yet holds no worker parked in a read (about 14 KiB of
// stack each).
func newH1conn(c net.Conn, info *connInfo) *h1conn {
	h := &h1conn{c: c, done: make(chan struct{}), writeTimeout: info.state.WriteTimeout}
	h.state.Store(h1Fresh)
	if socketOf(c) != nil {
		buffered(h)
	}
	return h
}

// readFirst reads the first byte of a request into h (under the deadline set while
// idle); h1Close or h1PeerClosed if there is none.
func readFirst(h *h1conn) h1End {
	if _, err := io.ReadFull(h.c, h.in.first[:]); err != nil {
		if errors.Is(err, errNotReady) {
			return h1NotReady
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return h1PeerClosed
		}
		return h1Close
	}
	h.in.hasByte = true
	return h1Again
}

// buffered reports whether TLS holds decrypted or received bytes of a next request that
// the socket no longer shows: it reads one byte into h without waiting.
func buffered(h *h1conn) bool {
	tc, ok := h.c.(*tls.Conn)
	if !ok {
		return false
	}
	var n int
	if s := socketOf(tc); s != nil {
		s.noWait = true
		n, _ = tc.Read(h.in.first[:])
		s.noWait = false
	} else {
		_ = tc.SetReadDeadline(time.Unix(1, 0))
		n, _ = tc.Read(h.in.first[:])
	}
	if n == 1 {
		h.in.hasByte = true
		return true
	}
	return false
}

// h1End is how a run of requests ended.
type h1End int

const (
	h1Again      h1End = iota // idle, nothing buffered: wait for the next request
	h1Close                   // close the connection
	h1PeerClosed              // the client closed the connection
	h1Hijacked                // an upgrade took the connection
	h1NotReady                // a wake-up found no data: wait again
)

// serveBuffered serves requests while the client has sent some (pipelining).
func (l *Listener) serveBuffered(h *h1conn, br *bufio.Reader, info *connInfo) h1End {
	st := info.state
	for {
		if !h.state.CompareAndSwap(h1Idle, h1Active) && !h.state.CompareAndSwap(h1Fresh, h1Active) &&
			!h.state.CompareAndSwap(h1Last, h1Closing) {
			return h1Close // draining
		}
		// The request's header map when the fast path reads it; nothing refers to it once
		// the request is served (serveOne), except after an upgrade or a panic.
		hdr := h.kept.reqHeader()
		r, err := l.readHeader(h, br, st, hdr)
		if err != nil {
			h.kept.keepReqHeader(hdr)
			if !errors.Is(err, io.EOF) && !isTimeout(err) {
				badRequest(h, err)
			}
			return h1Close
		}
		keep, hj := l.serveOne(h, br, r, info, hdr)
		switch {
		case hj:
			return h1Hijacked
		case !keep || !h.state.CompareAndSwap(h1Active, h1Idle):
			return h1Close
		case br.Buffered() == 0 && !buffered(h):
			return h1Again
		}
	}
}

func isTimeout(err error) bool {
	ne, ok := errors.AsType[net.Error](err)
	return ok && ne.Timeout()
}

// serveOne checks and serves one request; keep says the connection can take another,
// hijacked that the handler took it over (an upgrade).
// reqHdr, lent by serveBuffered, goes back to its pool when the request is served.
func (l *Listener) serveOne(h *h1conn, br *bufio.Reader, r *http.Request, info *connInfo, reqHdr http.Header) (keep, hijacked bool) {
	if msg, code := checkRequest(r, h.in.fast); code != 0 {
		badRequest(h, errors.New(msg), code)
		return false, false
	}
	r.RemoteAddr, r.TLS = info.client, info.cs
	body := endWatch(r.Body) // says when it was read whole, under the handler's wrappers (linger.go)
	r.Body = body
	bw := h.kept.writer()
	bw.Reset(h)
	hdr := h.kept.header()
	w := h.kept.w
	if h.kept.w = nil; w == nil {
		w = new(h1writer)
		w.head, h.kept.head = h.kept.head, nil // the last writer's response head storage, if it left one
	}
	w.h1resp = h1resp{h: h, br: br, bw: bw, req: r, header: hdr, remain: -1}
	if !l.handleSafely(w, r, info) {
		// The response is broken off: no final chunk, and the connection is closed. What
		// the handler left running may hold the request's strings.
		h.loseHead()
		bw.Reset(nil)
		h.linger = !w.failed && h.inputLeft(br, body)
		return false, false
	}
	if w.hijacked {
		h.loseHead() // never lent (h1parse declines Upgrade): in case
		return false, true
	}
	w.finish()
	err := bw.Flush()
	bw.Reset(nil)
	clear(hdr)
	h.kept.bw, h.kept.hdr = bw, hdr
	keep = err == nil && !w.closeAfter && !w.failed
	if keep && r.Body != http.NoBody && r.Header.Get("Expect") != "" && !w.continued {
		// Refused before "100 Continue": the client may never send the body.
		keep = false
	}
	// The handler is done with the request (an upgrade or a panic returned above): no
	// goroutine of it is left, unless it was held beyond (an HTTP/2 target's client), and
	// the log line was written (keptBufs.requestHead lists the request's keepers).
	r.Header = nil
	h.doneWith(reqHdr)
	if r.Body == http.NoBody {
		// Nor of the request and its writer: the writer serves the run's next request and
		// h1parse's block a later one, both warm in the cache. Those of a request with a
		// body are left to the GC, in case a reader of its body is still about, and so is
		// the block of a request held beyond (its header's values are the block's).
		if h.in.fast && !h.in.held {
			h1parse.Release(h.in.req)
		}
		h.in.req = nil
		if w.rc.held {
			// Its context may still be read by a goroutine of context's (reqCtx.held):
			// the next request gets a writer, and a context, of its own.
			h.kept.head = w.head
		} else {
			h.kept.w = w
		}
		h.linger = !keep && !w.failed && h.inputLeft(br, nil)
		return keep, false
	}
	h.in.req = nil
	// The writer is left, its response head storage is not: the client's header, which
	// held views of it, was emptied above (responseHead).
	h.kept.head = w.head
	if keep && r.Body != http.NoBody {
		// Read what the handler left of the body, within reason, to keep the connection.
		setDeadline(h.c, info.state.HeaderTimeout)
		n, err := io.CopyN(io.Discard, r.Body, maxDiscard+1)
		keep = errors.Is(err, io.EOF) && n <= maxDiscard
	}
	// Closing with the body unread (more than maxDiscard, a refusal before 100-continue,
	// a failed body read) would reset the connection and lose the answer.
	h.linger = !keep && !w.failed && h.inputLeft(br, body)
	return keep, false
}

// handleSafely runs the request path; false when it panicked. http.ErrAbortHandler is
// the proxy's way to end a response the backend broke off; any other panic is logged
// with its stack, as net/http's server does, and takes down only this connection.
func (l *Listener) handleSafely(w *h1writer, r *http.Request, info *connInfo) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			ok = false
			if v != http.ErrAbortHandler {
				l.deps.Log.Error("panic serving a request", "listener", info.state.ID, "client", info.client,
					"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			}
		}
	}()
	l.serveRequest(w, r, info)
	return true
}
