package listener

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"runtime"
	"testing"
	"time"

	"tlsgate/internal/clientauth"
	"tlsgate/internal/config"
	"tlsgate/internal/metrics"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
	"tlsgate/internal/tlsconf"
)

// reloadFixture is a mutual https listener over a throwaway CA, serving alice, for the
// revalidate tests: state(deny, verify) builds a state whose denylist refuses every
// client when deny is set, with verify as its handshakes' VerifyConnection (nil: none).
type reloadFixture struct {
	id    string
	ca    *pkitest.CA
	srv   tls.Certificate
	alice tls.Certificate
	l     *Listener
	logs  lockedBuffer
	stop  func() // shuts the listener down and waits for it; idempotent, also a cleanup
}

func newReloadFixture(t *testing.T, id string) *reloadFixture {
	ca := pkitest.New(t, "root", pki.ECDSAP256)
	return &reloadFixture{id: id, ca: ca, srv: ca.Issue("localhost", pkitest.Server("localhost")).TLS(), alice: ca.Issue("alice").TLS()}
}

func (f *reloadFixture) state(deny bool, verify func(tls.ConnectionState) error) *State {
	v := &clientauth.Verifier{Roots: f.ca.Pool()}
	if deny {
		v.Deny = func(*x509.Certificate) bool { return true }
	}
	auth := &tlsconf.Auth{Mode: config.ModeMutual, Verifier: v, Config: &tls.Config{
		Certificates: []tls.Certificate{f.srv}, ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs: f.ca.Pool(), NextProtos: []string{"http/1.1"}, VerifyConnection: verify}}
	return NewState(&State{ID: f.id, Protocol: config.ProtoHTTPS, Default: &Domain{Auth: auth},
		HandshakeTimeout: 5 * time.Second, HeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second}, nil)
}

// serve starts the listener with st.
func (f *reloadFixture) serve(t *testing.T, st *State) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.l = New(ln, st, Deps{Log: slog.New(slog.NewJSONHandler(&f.logs, nil)), Metrics: metrics.New()})
	served := make(chan error, 1)
	go func() { served <- f.l.Serve() }()
	stopped := false
	f.stop = func() {
		if !stopped {
			stopped = true
			_ = f.l.Shutdown(t.Context())
			<-served
		}
	}
	t.Cleanup(f.stop)
}

// dial connects as alice.
func (f *reloadFixture) dial(t *testing.T) *tls.Conn {
	c, err := tls.Dial("tcp", f.l.ln.Addr().String(), &tls.Config{RootCAs: f.ca.Pool(), ServerName: "localhost",
		Certificates: []tls.Certificate{f.alice}, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// wantDenied fails unless the one line logged is c's connection, cut as denied.
func (f *reloadFixture) wantDenied(t *testing.T, c *tls.Conn) {
	lines := logLines(t, bytes.NewBuffer(f.logs.Bytes()))
	if len(lines) != 1 || lines[0]["reason"] != "denied" || lines[0]["listener"] != f.id || lines[0]["client"] != c.LocalAddr().String() {
		t.Fatalf("lines %v, want one for the connection, denied", lines)
	}
}

// TestRevalidateFreshConnection: a reload that refuses a client whose handshake has just
// ended closes its connection and logs it with the connection's fields. revalidate runs
// on the reload's goroutine and reads what the handshake's worker set (the line), so
// the connection joins the verified set only once that is set: stored before, a reload
// that found it read the line while the worker wrote it (a data race, and a line
// without its fields). The test holds the HTTP/1 connections' lock, so the connection's
// own goroutine has not touched the socket yet (as under load, not yet scheduled; once
// it has, the socket's lock orders the worker's writes before the reload's close), waits
// for the connection to be in the set as revalidate finds it, then swaps in a state
// whose denylist refuses the client: under -race the line's read was reported before.
func TestRevalidateFreshConnection(t *testing.T) {
	f := newReloadFixture(t, "fresh")
	f.serve(t, f.state(false, nil))
	l := f.l
	l.h1mu.Lock() // the connection's goroutine waits in track
	locked := true
	defer func() {
		if locked {
			l.h1mu.Unlock()
		}
	}()
	c := f.dial(t)
	for stored := false; !stored; runtime.Gosched() {
		l.verified.Range(func(any, any) bool { stored = true; return false })
	}
	l.Swap(f.state(true, nil))
	l.h1mu.Unlock()
	locked = false
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || isTimeout(err) {
		t.Fatalf("read %d bytes, %v: want the connection closed", n, err)
	}
	f.wantDenied(t, c)
}

// TestRevalidateDuringHandshake: a reload that refuses a client while its handshake runs
// under the state before closes its connection too. The reload's walk of the verified
// set runs before the connection joins it, so the connection checks itself against the
// state now current when it joins: without that, the client was let in under the old
// state and served (an HTTP request, a TCP SSL relay for as long as it lasts).
func TestRevalidateDuringHandshake(t *testing.T) {
	f := newReloadFixture(t, "during")
	swapped := make(chan struct{})
	// The reload lands while this handshake runs: after its checks passed.
	f.serve(t, f.state(false, func(tls.ConnectionState) error {
		f.l.Swap(f.state(true, nil))
		close(swapped)
		return nil
	}))
	c := f.dial(t)
	<-swapped // the server's side of the handshake may end after the client's
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")) // may fail: closed already
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || isTimeout(err) {
		t.Fatalf("read %d bytes, %v: want the connection closed, nothing served", n, err)
	}
	f.stop() // the line is written after the close, on the connection's worker
	f.wantDenied(t, c)
}
