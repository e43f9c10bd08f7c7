package listener

import (
	"bufio"
	"net"
	"net/http"
	"time"

	"tlsgate/internal/lazytime"
)

// Lazy deadlines (internal/lazytime). An HTTP/1 keep-alive request used to set four
// deadlines on its client connection (the idle wait, the header, clearing it, the
// response's write); with the lazy rule, between requests that come close together the
// idle deadline and the write deadline are not touched. The header timeout is armed
// only when a header read has to wait on the socket (armOnWait): a request that came
// whole, the usual case, waits for nothing.

// SetReadDeadline sets the socket's read deadline and notes it for the lazy setters.
// Every read deadline of the connection comes here, TLS's and the drain's included.
func (s *sockConn) SetReadDeadline(t time.Time) error {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	s.rdl = lazytime.Of(t)
	return s.TCPConn.SetReadDeadline(t)
}

// SetWriteDeadline sets the socket's write deadline and notes it.
func (s *sockConn) SetWriteDeadline(t time.Time) error {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	s.wdl = lazytime.Of(t)
	return s.TCPConn.SetWriteDeadline(t)
}

// SetDeadline sets both deadlines.
func (s *sockConn) SetDeadline(t time.Time) error {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	s.rdl, s.wdl = lazytime.Of(t), lazytime.Of(t)
	return s.TCPConn.SetDeadline(t)
}

// readTimeout makes reads fail d from now (none when d ≤ 0), lazily.
func (s *sockConn) readTimeout(d time.Duration) {
	if d <= 0 {
		_ = s.SetReadDeadline(time.Time{})
		return
	}
	n := lazytime.Now() + int64(d)
	s.dmu.Lock()
	defer s.dmu.Unlock()
	if !lazytime.Keeps(s.rdl, n, d) {
		t := time.Now().Add(d)
		s.rdl = lazytime.Of(t)
		_ = s.TCPConn.SetReadDeadline(t)
	}
}

// writeTimeout makes writes fail d from now, lazily.
func (s *sockConn) writeTimeout(d time.Duration) {
	n := lazytime.Now() + int64(d)
	s.dmu.Lock()
	defer s.dmu.Unlock()
	if !lazytime.Keeps(s.wdl, n, d) {
		t := time.Now().Add(d)
		s.wdl = lazytime.Of(t)
		_ = s.TCPConn.SetWriteDeadline(t)
	}
}

// armOnWait has the next read that waits on the socket set a read deadline d from
// then; d = 0 withdraws it. It is for the header timeout: the idle wait's deadline
// stands while a request's bytes are taken from what has arrived already, and a read
// that waits for more bytes of the header gets the header timeout. Only the goroutine
// reading the connection calls it.
func (s *sockConn) armOnWait(d time.Duration) { s.waitArm = d }

func (s *sockConn) armWait() {
	d := s.waitArm
	s.waitArm = 0
	s.readTimeout(d)
}

// setDeadline sets c's read deadline d from now (none when d ≤ 0), lazily on a socket
// we wrapped.
func setDeadline(c net.Conn, d time.Duration) {
	if s := socketOf(c); s != nil {
		s.readTimeout(d)
		return
	}
	if d > 0 {
		_ = c.SetReadDeadline(time.Now().Add(d))
	} else {
		_ = c.SetReadDeadline(time.Time{})
	}
}

// readHeader reads a request's header under the header timeout and leaves no read
// deadline for its body, which the handler reads for as long as it takes. On our
// socket the header timeout is armed only if a read waits, and a request without a
// body keeps the deadline it has: nothing reads the connection until the next idle
// wait sets its own, except the client watch and an upgrade, which clear it.
func (l *Listener) readHeader(h *h1conn, br *bufio.Reader, st *State, hdr http.Header) (*http.Request, error) {
	s := socketOf(h.c)
	if s == nil {
		setDeadline(h.c, st.HeaderTimeout)
	} else {
		s.armOnWait(st.HeaderTimeout)
	}
	r, err := l.readRequest(h, br, st, hdr)
	if s != nil {
		s.armOnWait(0)
	}
	if err == nil && (s == nil || r.Body != http.NoBody) {
		_ = h.c.SetReadDeadline(time.Time{})
	}
	return r, err
}
