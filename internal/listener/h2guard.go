package listener

import (
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// HTTP/2 is served by net/http's bundled server, which cuts HPACK bombs and oversized
// header blocks but not floods of frames that cost the client nothing and the server a
// lot: streams opened and reset at once (rapid reset, CVE-2023-44487: each one starts
// a handler and a backend exchange), empty CONTINUATION or DATA frames, SETTINGS and
// PING frames (each answered by an ACK), and a header block that never ends. h2guard
// sits between the TLS connection and that server, reads the 9-byte frame headers
// passing both ways, and past a bound sends GOAWAY(ENHANCE_YOUR_CALM) at a frame
// boundary of the server's output and closes the connection, as nginx does: lingering,
// so that the client reads the GOAWAY (calm, linger.go).
//
// The bounds are token buckets per connection: a burst, refilled at a rate, so a
// client that misbehaves now and then is served and a flood is cut within a fraction of
// a second.
var (
	// earlyResets: RST_STREAM from the client for a stream the server has not answered
	// yet. Browsers cancel such streams (navigation, aborted fetches), up to all their
	// concurrent streams at once: the burst is twice the server's 250 concurrent
	// streams, as nginx allows 2 × concurrent_streams new streams per read; 100 a
	// second sustained leaves room for gRPC deadlines expiring under a slow backend.
	earlyResets = bucketSpec{burst: 500, rate: 100}
	// emptyFrames: CONTINUATION or HEADERS without payload that do not end the header
	// block, DATA without payload that does not end the stream. No client needs them
	// (CVE-2019-9518, CVE-2024-27316).
	emptyFrames = bucketSpec{burst: 100, rate: 10}
	// controlFrames: SETTINGS and PING (not ACKs). A client sends one SETTINGS at the
	// start and a few later; keep-alive pings come seconds apart. A PING after the
	// server sent HEADERS or DATA is free, as gRPC's server allows for its BDP pings.
	controlFrames = bucketSpec{burst: 100, rate: 10}
)

// bucketSpec is a token bucket's size and refill rate (per second).
type bucketSpec struct{ burst, rate float64 }

type bucket struct {
	tokens float64
	last   time.Time
}

// take spends a token; false when there is none left.
func (b *bucket) take(s bucketSpec, now time.Time) bool {
	if b.last.IsZero() {
		b.tokens = s.burst
	} else {
		b.tokens = min(s.burst, b.tokens+now.Sub(b.last).Seconds()*s.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// errCalm ends a connection the guard cut; its text says why.
type errCalm string

func (e errCalm) Error() string { return "http2: " + string(e) }

// h2guard wraps one HTTP/2 connection (see above). Reads come from the server's frame
// reader, one at a time, under rmu; writes from its frame writer, one at a time, under
// wmu.
type h2guard struct {
	net.Conn // the TLS connection
	tc       *tls.Conn
	budget   *HeaderBudget
	// headerTimeout bounds a header block from its HEADERS frame to its last frame;
	// writeTimeout bounds one write to the socket.
	headerTimeout, writeTimeout time.Duration
	onCut                       func(reason string) // logs the cut
	// After a cut the socket's end is the listener's lingering close, bounded by
	// Lingerers and counted under the listener's id (closeLingeringWith), under lim
	// (cutLinger).
	l   *Listener
	id  string
	lim lingerLimits

	// rmu is held by a read of the socket in progress; calm takes it to wait until the
	// server's reader has left the socket before handing it to the lingering close.
	rmu    sync.Mutex
	closed bool // under mu: the server closed the connection before any cut

	in                    frameScan // read side
	early, empty, control bucket
	reserved              atomic.Int64 // header bytes taken from budget
	sentSincePing         atomic.Bool
	mu                    sync.Mutex  // the fields below, used by both sides
	block                 *time.Timer // runs while a header block is being read
	pending               map[uint32]struct{}
	maxStream             uint32

	wmu   sync.Mutex
	out   frameScan     // write side, under wmu
	cut   atomic.Bool   // set once, under mu (calm)
	sent  chan struct{} // closed once GOAWAY was written (or cannot be)
	gone  bool          // under wmu: GOAWAY written
	wrote bool          // under wmu: the server's output has begun (with its SETTINGS)
}

func newH2Guard(l *Listener, tc *tls.Conn, st *State, budget *HeaderBudget, onCut func(string)) *h2guard {
	return &h2guard{
		Conn: tc, tc: tc, budget: budget, onCut: onCut, l: l, id: st.ID, lim: cutLinger,
		headerTimeout: st.HeaderTimeout, writeTimeout: st.WriteTimeout,
		in:      frameScan{skip: len(clientPreface)},
		pending: map[uint32]struct{}{},
		sent:    make(chan struct{}),
	}
}

// Read reads for the server's frame reader. After a cut nothing more is read: the
// socket belongs to the lingering close, and a read in progress when the header
// block's timer cut returns (calm wakes it).
func (g *h2guard) Read(p []byte) (int, error) {
	g.rmu.Lock()
	if g.cut.Load() {
		g.rmu.Unlock()
		return 0, net.ErrClosed
	}
	n, err := g.Conn.Read(p)
	g.rmu.Unlock()
	if g.cut.Load() {
		return 0, net.ErrClosed // cut by the header block's timer: nothing more is served
	}
	if n > 0 {
		if ferr := g.in.feed(p[:n], g.inHead, g.inEnd); ferr != nil {
			g.calm(ferr.Error())
			return 0, ferr
		}
	}
	return n, err
}

// inHead counts a frame from the client as it starts.
func (g *h2guard) inHead(h frameHeader) error {
	switch h.typ {
	case frameHeaders, frameContinuation:
		if h.typ == frameHeaders {
			g.opened(h.stream)
		}
		if h.length == 0 && !h.has(flagEndHeaders) && !g.empty.take(emptyFrames, time.Now()) {
			return errCalm("too many empty HEADERS/CONTINUATION frames")
		}
		return g.headerBytes(h)
	case frameData:
		if h.length == 0 && !h.has(flagEndStream) && !g.empty.take(emptyFrames, time.Now()) {
			return errCalm("too many empty DATA frames")
		}
	case frameRSTStream:
		if g.answered(h.stream) {
			return nil
		}
		if !g.early.take(earlyResets, time.Now()) {
			return errCalm("too many streams reset before their response (rapid reset)")
		}
	case frameSettings, framePing:
		if h.has(flagAck) || (h.typ == framePing && g.sentSincePing.Swap(false)) {
			return nil
		}
		if !g.control.take(controlFrames, time.Now()) {
			return errCalm("too many SETTINGS/PING frames")
		}
	}
	return nil
}

// inEnd ends a header block's clock and gives its bytes back once its last frame is in.
func (g *h2guard) inEnd(h frameHeader) error {
	if (h.typ == frameHeaders || h.typ == frameContinuation) && h.has(flagEndHeaders) {
		g.stopBlock()
		g.budget.give(g.reserved.Swap(0))
	}
	return nil
}

func (g *h2guard) stopBlock() {
	g.mu.Lock()
	if g.block != nil {
		g.block.Stop()
		g.block = nil
	}
	g.mu.Unlock()
}

// headerBytes takes a header frame's bytes from the process's budget and starts the
// header block's clock: a block is read within header_timeout as an HTTP/1 header is.
func (g *h2guard) headerBytes(h frameHeader) error {
	if !g.budget.take(int64(h.length)) {
		return errCalm("the process's header memory budget is spent")
	}
	g.reserved.Add(int64(h.length))
	g.mu.Lock()
	if g.block == nil && g.headerTimeout > 0 {
		g.block = time.AfterFunc(g.headerTimeout, func() { g.calm("header block not finished within header_timeout") })
	}
	g.mu.Unlock()
	return nil
}

// opened notes a stream the client opened; answered reports whether the server has
// answered it (or reset it), forgetting it either way.
func (g *h2guard) opened(id uint32) {
	g.mu.Lock()
	if id > g.maxStream {
		g.maxStream = id
		g.pending[id] = struct{}{}
	}
	g.mu.Unlock()
}

func (g *h2guard) answered(id uint32) bool {
	g.mu.Lock()
	_, open := g.pending[id]
	delete(g.pending, id)
	g.mu.Unlock()
	return !open
}

// outHead notes the server's answers.
func (g *h2guard) outHead(h frameHeader) error {
	switch h.typ {
	case frameHeaders, frameRSTStream:
		g.mu.Lock()
		delete(g.pending, h.stream)
		g.mu.Unlock()
		g.sentSincePing.Store(true)
	case frameData:
		g.sentSincePing.Store(true)
	}
	return nil
}

func (g *h2guard) Write(p []byte) (int, error) {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	if g.cut.Load() {
		return g.finishAndGoAway(p)
	}
	if g.writeTimeout > 0 {
		// A client that stops reading (a zero TCP window) is closed after this long
		// without progress, not after the kernel gives up.
		_ = g.Conn.SetWriteDeadline(time.Now().Add(g.writeTimeout))
	}
	n, err := g.Conn.Write(p)
	g.wrote = g.wrote || n > 0
	_ = g.out.feed(p[:n], g.outHead, nil)
	return n, err
}

// finishAndGoAway writes what p holds of the frame in progress, then GOAWAY.
func (g *h2guard) finishAndGoAway(p []byte) (int, error) {
	if g.gone {
		return 0, net.ErrClosed
	}
	k := g.out.toBoundary(p)
	n, err := g.Conn.Write(p[:k])
	_ = g.out.feed(p[:n], nil, nil)
	if err == nil && g.out.atBoundary() {
		g.writeGoAway()
	}
	return n, net.ErrClosed
}

// writeGoAway sends GOAWAY(ENHANCE_YOUR_CALM); the caller holds wmu and the output is
// at a frame boundary. A cut before the server wrote anything (net/http flushes its
// SETTINGS on a goroutine of its own, which a flood read at once can overtake) sends
// an empty SETTINGS first: it must be the server's first frame, and a client such as
// Go's takes a GOAWAY before it for a protocol error and never sees the code.
func (g *h2guard) writeGoAway() {
	g.mu.Lock()
	last := g.maxStream
	g.mu.Unlock()
	frames := goAway(last, codeEnhanceYourCalm)
	if !g.wrote {
		frames = append(emptySettings(), frames...)
	}
	_, _ = g.Conn.Write(frames)
	g.gone = true
	close(g.sent)
}

// calm cuts the connection: GOAWAY at the next frame boundary of the server's output
// (at once when there is one, else after the frame being written, waiting at most
// goAwayWait), then a lingering close, bounded and counted as every other
// (closeLingeringWith, under cutLinger). From the cut on, the guard owns the socket's
// end: reads and writes fail, and the server's Close leaves the socket alone (see
// Close).
//
// The lingering close must be the socket's only reader: it reads the socket itself
// (under TLS) and resets the socket's read state (lingerClose). A cut from the header
// block's timer comes while the server's reader may be inside a read of the same
// socket; so calm wakes that read (a read deadline in the past) and waits for it to
// leave (rmu), and Read starts no other once cut. A cut from Read itself (a flood
// seen in the bytes just read) runs after its read, with rmu free.
func (g *h2guard) calm(reason string) {
	g.mu.Lock()
	if g.closed || g.cut.Load() {
		g.mu.Unlock()
		return // cut already, or the server closed the socket first: nothing left to cut
	}
	g.cut.Store(true)
	g.mu.Unlock()
	// A write blocked on a client that does not read gives way within goAwayWait.
	_ = g.Conn.SetWriteDeadline(time.Now().Add(goAwayWait))
	g.wmu.Lock()
	if !g.gone && g.out.atBoundary() {
		g.writeGoAway()
	}
	g.wmu.Unlock()
	select {
	case <-g.sent:
	case <-time.After(goAwayWait):
	}
	_ = g.tc.SetReadDeadline(time.Unix(1, 0)) // wakes a read in progress
	g.rmu.Lock()                              // which has returned once this is held
	g.l.closeLingeringWith(g.tc, g.id, g.lim)
	g.rmu.Unlock()
	if g.onCut != nil {
		g.onCut(reason) // after the close is counted: the line's reader sees the count
	}
}

// cutLinger bounds the lingering close of a connection cut for a flood (nginx lingers
// its HTTP/2 connections as its HTTP/1 ones: lingering_timeout 5 s, lingering_time
// 30 s). The client there is abusive: what it is owed is the chance to read the
// GOAWAY, and every second it lingers holds a place of the process's Lingerers that a
// refused but well-behaved client may need. A flooding client that went silent for
// 1 s has stopped sending (Go's own HTTP/2 server and Envoy's delayed_close_timeout
// wait 1 s after a GOAWAY with an error); closing then leaves nothing unread, so there
// is no reset, and what was sent is still delivered. 5 s in all and 16 MiB (what
// h2guard's own close allowed before) bound one that trickles or keeps flooding: past
// them the close is what it was before lingering.
var cutLinger = lingerLimits{silence: time.Second, total: 5 * time.Second, bytes: 16 << 20}

// goAwayWait bounds the wait for the frame in progress before the GOAWAY.
const goAwayWait = time.Second

// Close gives back what the connection holds of the header budget and closes it,
// unless the guard cut it: the socket is then calm's to close, after its lingering
// close. net/http's HTTP/2 server closes its connection as soon as a write fails, and
// after a cut every write fails, so its Close comes while the client's flood is still
// arriving: closing then would reset the connection, and the kernel would drop the
// GOAWAY if it had not left yet (TestCutLingers).
func (g *h2guard) Close() error {
	g.stopBlock()
	g.budget.give(g.reserved.Swap(0))
	g.mu.Lock()
	cut := g.cut.Load()
	g.closed = !cut
	g.mu.Unlock()
	if cut {
		return nil
	}
	return g.Conn.Close()
}

// h2Adequate applies RFC 9113 §9.2 (TLS 1.2 or later; on 1.2 an ephemeral key exchange
// with an AEAD cipher), which net/http's server checks only on a *tls.Conn it sees.
func h2Adequate(cs *tls.ConnectionState) bool {
	if cs.Version >= tls.VersionTLS13 {
		return true
	}
	if cs.Version < tls.VersionTLS12 {
		return false
	}
	switch cs.CipherSuite {
	case tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256:
		return true
	}
	return false
}
