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
	ca := pkitest.New(t, "root", pki.ECDSAP256)
	srvCert := ca.Issue("localhost", pkitest.Server("localhost")).TLS()
	alice := ca.Issue("alice").TLS()
	state := func(deny bool) *State {
		v := &clientauth.Verifier{Roots: ca.Pool()}
		if deny {
			v.Deny = func(*x509.Certificate) bool { return true }
		}
		auth := &tlsconf.Auth{Mode: config.ModeMutual, Verifier: v, Config: &tls.Config{
			Certificates: []tls.Certificate{srvCert}, ClientAuth: tls.RequireAndVerifyClientCert,
			ClientCAs: ca.Pool(), NextProtos: []string{"http/1.1"}}}
		return NewState(&State{ID: "fresh", Protocol: config.ProtoHTTPS, Default: &Domain{Auth: auth},
			HandshakeTimeout: 5 * time.Second, HeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second}, nil)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	l := New(ln, state(false), Deps{Log: slog.New(slog.NewJSONHandler(&logs, nil)), Metrics: metrics.New()})
	served := make(chan error, 1)
	go func() { served <- l.Serve() }()
	defer func() {
		_ = l.Shutdown(t.Context())
		<-served
	}()
	l.h1mu.Lock() // the connection's goroutine waits in track
	locked := true
	defer func() {
		if locked {
			l.h1mu.Unlock()
		}
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost",
		Certificates: []tls.Certificate{alice}, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for stored := false; !stored; runtime.Gosched() {
		l.verified.Range(func(any, any) bool { stored = true; return false })
	}
	l.Swap(state(true))
	l.h1mu.Unlock()
	locked = false
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || isTimeout(err) {
		t.Fatalf("read %d bytes, %v: want the connection closed", n, err)
	}
	lines := logLines(t, bytes.NewBuffer(logs.Bytes()))
	if len(lines) != 1 || lines[0]["reason"] != "denied" || lines[0]["listener"] != "fresh" || lines[0]["client"] != c.LocalAddr().String() {
		t.Fatalf("lines %v, want one for the connection, denied", lines)
	}
}

// TestRevalidateDuringHandshake: a reload that refuses a client while its handshake runs
// under the state before closes its connection too. The reload's walk of the verified
// set runs before the connection joins it, so the connection checks itself against the
// state now current when it joins: without that, the client was let in under the old
// state and served (an HTTP request, a TCP SSL relay for as long as it lasts).
func TestRevalidateDuringHandshake(t *testing.T) {
	ca := pkitest.New(t, "root", pki.ECDSAP256)
	srvCert := ca.Issue("localhost", pkitest.Server("localhost")).TLS()
	alice := ca.Issue("alice").TLS()
	var l *Listener
	swapped := make(chan struct{})
	var state func(deny bool) *State
	state = func(deny bool) *State {
		v := &clientauth.Verifier{Roots: ca.Pool()}
		if deny {
			v.Deny = func(*x509.Certificate) bool { return true }
		}
		cfg := &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientAuth: tls.RequireAndVerifyClientCert,
			ClientCAs: ca.Pool(), NextProtos: []string{"http/1.1"}}
		if !deny {
			// The reload lands while this handshake runs: after its checks passed.
			cfg.VerifyConnection = func(tls.ConnectionState) error {
				l.Swap(state(true))
				close(swapped)
				return nil
			}
		}
		auth := &tlsconf.Auth{Mode: config.ModeMutual, Verifier: v, Config: cfg}
		return NewState(&State{ID: "during", Protocol: config.ProtoHTTPS, Default: &Domain{Auth: auth},
			HandshakeTimeout: 5 * time.Second, HeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second}, nil)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	l = New(ln, state(false), Deps{Log: slog.New(slog.NewJSONHandler(&logs, nil)), Metrics: metrics.New()})
	served := make(chan error, 1)
	go func() { served <- l.Serve() }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = l.Shutdown(t.Context())
			<-served
		}
	}
	defer stop()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost",
		Certificates: []tls.Certificate{alice}, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-swapped // the server's side of the handshake may end after the client's
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")) // may fail: closed already
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || isTimeout(err) {
		t.Fatalf("read %d bytes, %v: want the connection closed, nothing served", n, err)
	}
	stop() // the line is written after the close, on the connection's worker
	lines := logLines(t, bytes.NewBuffer(logs.Bytes()))
	if len(lines) != 1 || lines[0]["reason"] != "denied" || lines[0]["listener"] != "during" || lines[0]["client"] != c.LocalAddr().String() {
		t.Fatalf("lines %v, want one for the connection, denied", lines)
	}
}
