package listener

import (
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// serveHTTP hands a (handshaken) HTTP/2 connection, behind its guard (h2guard.go), to
// the http.Server of its state. The server gets the guard, not the *tls.Conn, so it
// serves it as HTTP/2 with prior knowledge and does not see TLS: what it would have
// checked of TLS (RFC 9113 §9.2) is checked here, and the request's TLS state is set by
// ServeHTTP.
func (l *Listener) serveHTTP(tc *tls.Conn, info *connInfo) {
	if !h2Adequate(info.cs) {
		l.refuseH2(tc, info)
		return
	}
	g := newH2Guard(l, tc, info.state, l.deps.HeaderBudget, func(reason string) {
		line := info.line
		line.Msg, line.Err = "connection", fmt.Errorf("closed with GOAWAY(ENHANCE_YOUR_CALM): %s", reason)
		l.log(context.Background(), &line)
	})
	s := l.h2For(info.state)
	l.infos.Store(g, info)
	if s == nil || !s.conns.push(g) {
		l.infos.Delete(g)
		l.dropH2(tc, g)
	}
}

// refuseH2 ends an HTTP/2 connection over TLS that RFC 9113 §9.2 forbids, as
// net/http's server did when it saw the TLS connection, but so that the client learns
// why: the server's preface first (an empty SETTINGS: a client such as Go's takes a
// GOAWAY before it for a protocol error and never sees the code), then GOAWAY
// INADEQUATE_SECURITY, then the listener's lingering close (close_notify, half-close,
// bounded and counted: linger.go). The client's preface and first request are on their
// way: closing with them unread would make the kernel reset the connection, and the
// client's next write would fail with a reset or a broken pipe before it read the
// GOAWAY (TestH2InadequateSecurity). The refusal is logged: the client's own error may
// not say why. The write is two frames into a socket whose client has just read the
// handshake: it does not wait, and closeNotifyWait bounds it if it did.
func (l *Listener) refuseH2(tc *tls.Conn, info *connInfo) {
	_ = tc.SetWriteDeadline(time.Now().Add(closeNotifyWait))
	_, _ = tc.Write(append(emptySettings(), goAway(0, codeInadequateSecurity)...))
	l.verified.Delete(tc)
	l.closeLingering(tc, info.state.ID)
	line := info.line // logged after the close is counted: the line's reader sees the count
	line.Msg = "connection"
	line.Err = fmt.Errorf("refused with GOAWAY(INADEQUATE_SECURITY): HTTP/2 over %s with %s, which RFC 9113 §9.2 forbids",
		tls.VersionName(info.cs.Version), tls.CipherSuiteName(info.cs.CipherSuite))
	l.log(context.Background(), &line)
	l.closed()
}

func (l *Listener) dropH2(tc *tls.Conn, c net.Conn) {
	l.verified.Delete(tc)
	_ = c.Close()
	l.closed()
}

// h2key tells apart the HTTP/2 servers of a listener.
type h2key struct {
	idle           time.Duration
	maxHeaderBytes int
}

// h2Protocols is HTTP/2 with prior knowledge only: the guard is not a *tls.Conn.
func h2Protocols() *http.Protocols {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	return p
}

// unguard is the TLS connection of an HTTP/2 server's connection.
func unguard(c net.Conn) net.Conn {
	if g, ok := c.(*h2guard); ok {
		return g.tc
	}
	return c
}

func (l *Listener) popInfo(c net.Conn) *connInfo {
	v, _ := l.infos.LoadAndDelete(c)
	info, _ := v.(*connInfo)
	if info == nil {
		st := l.state.Load()
		info = newConnInfo(st, c.RemoteAddr().String(), false)
		info.line = Line{Listener: st.ID, Client: info.client}
	}
	return info
}

// ServeHTTP serves HTTP/2 requests, whose connection's info the http.Server's
// ConnContext put in the request context.
func (l *Listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info, _ := r.Context().Value(connKey{}).(*connInfo)
	r.TLS = info.cs
	if msg := overLimits(r, info.state.HeaderLimits); msg != "" {
		// net/http bounds the block's size (MaxHeaderBytes); the field limits are ours.
		http.Error(w, "431 request header fields too large: "+msg, http.StatusRequestHeaderFieldsTooLarge)
		return
	}
	l.serveRequest(w, r, info)
}

// overLimits checks a decoded HTTP/2 header against the field limits of HTTP/1's.
func overLimits(r *http.Request, lim HeaderLimits) string {
	lim.Fields = cmp.Or(lim.Fields, DefaultHeaderLimits.Fields)
	lim.FieldBytes = cmp.Or(lim.FieldBytes, DefaultHeaderLimits.FieldBytes)
	n := 0
	for k, vs := range r.Header {
		n += len(vs)
		for _, v := range vs {
			if len(k)+2+len(v) > lim.FieldBytes {
				return "a field over max_header_field_bytes"
			}
		}
	}
	if n > lim.Fields {
		return "more fields than max_header_fields"
	}
	return ""
}

// chanListener is a net.Listener fed by the accept loop after the handshake, so the
// http.Server never sees a connection whose handshake failed.
type chanListener struct {
	addr   net.Addr
	ch     chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (c *chanListener) push(conn net.Conn) bool {
	select {
	case c.ch <- conn:
		return true
	case <-c.done:
		return false
	}
}

func (c *chanListener) Accept() (net.Conn, error) {
	select {
	case conn := <-c.ch:
		return conn, nil
	case <-c.done:
		return nil, net.ErrClosed
	}
}

func (c *chanListener) Close() error {
	c.closed.Do(func() { close(c.done) })
	return nil
}

func (c *chanListener) Addr() net.Addr { return c.addr }

var _ net.Listener = (*chanListener)(nil)
