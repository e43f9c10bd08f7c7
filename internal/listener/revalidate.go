package listener

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"

	"tlsgate/internal/clientauth"
)

// A reload that revokes a client certificate (a new CRL, the denylist) or drops its
// identity from an allow-list must not leave that client an open door: a TCP SSL relay,
// an upgraded HTTP connection or an HTTP/2 connection can last for days, and an idle
// HTTP/1 one would get one more request. revalidate checks every open connection of a
// verified client against the new state's checks and closes those it now refuses.
// Only definite refusals close (revoked, denied, not_allowed): a CRL or OCSP answer
// that is merely unavailable refuses new connections under fail_closed, but does not cut
// open ones; a certificate that expires while connected is not judged again either.

// revalidate closes the open connections whose verified clients st refuses.
func (l *Listener) revalidate(st *State) {
	l.verified.Range(func(k, v any) bool {
		l.recheck(st, k.(net.Conn), v.(*connInfo))
		return true
	})
}

// joinVerified adds a verified connection, its fields set, to the set revalidate walks.
// Its handshake ran under st; a reload that swapped the state since may have walked the
// set before the connection joined it, so the connection is then checked here against
// the state now current. Swap stores the state before it walks the set: either that
// walk finds the connection, or the connection finds the new state.
func (l *Listener) joinVerified(conn net.Conn, info *connInfo, st *State) {
	l.verified.Store(conn, info) // removed when the connection ends
	if now := l.state.Load(); now != st {
		l.recheck(now, conn, info)
	}
}

// recheck closes c if st refuses its verified client.
func (l *Listener) recheck(st *State, c net.Conn, info *connInfo) {
	auth := st.Lookup(info.cs.ServerName).Auth
	if auth == nil || auth.Verifier == nil {
		return // the domain no longer asks for client certificates
	}
	switch reason := auth.Verifier.Recheck(info.verdict.Chain); reason {
	case clientauth.Revoked, clientauth.Denied, clientauth.NotAllowed:
		if _, ok := l.verified.LoadAndDelete(c); !ok {
			return // cut already, by another walk
		}
		// The socket, not the TLS connection: tls.Conn.Close would first wait to
		// send close_notify behind a write that a client not reading keeps blocked,
		// and the reload would wait with it.
		if tc, ok := c.(*tls.Conn); ok {
			c = tc.NetConn()
		}
		// A TCP relay logs its one connection line when its copy ends, with this
		// reason, and so does a request in flight (a WebSocket, say); an idle HTTP
		// connection has no line of its own, so it is logged here.
		info.cut.Store(reason)
		idle := info.cutRequests(reason)
		_ = c.Close()
		if l.proxy != nil && idle {
			line := info.line
			line.Msg = "connection"
			cutLine(&line, reason)
			l.log(context.Background(), &line)
		}
	}
}

// cutRequests records that a reload cut the connection for reason, and reports whether
// no request was in flight to carry it in its line.
func (info *connInfo) cutRequests(reason clientauth.Reason) bool {
	info.reqs.Lock()
	defer info.reqs.Unlock()
	info.reqs.cut = reason
	return info.reqs.inflight == 0
}

// beginRequest counts a request in flight on the connection.
func (info *connInfo) beginRequest() {
	info.reqs.Lock()
	info.reqs.inflight++
	info.reqs.Unlock()
}

// endRequest ends one and returns the reason a reload cut the connection for, if it did.
func (info *connInfo) endRequest() clientauth.Reason {
	info.reqs.Lock()
	defer info.reqs.Unlock()
	info.reqs.inflight--
	return info.reqs.cut
}

// cutLine records on line that a reload closed its connection for reason.
func cutLine(line *Line, reason clientauth.Reason) {
	line.Reason, line.Verify = reason, "FAILED:"+string(reason)
	line.Err = fmt.Errorf("closed: a reload refuses this client certificate now (%s)", reason)
}
