package server_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"tlsgate/internal/pki"
)

// TestRevocationClosesOpenConnections: a reload with a CRL that revokes a connected
// client closes its open connections — a TCP SSL relay, an idle HTTP/1.1 keep-alive
// connection, a WebSocket, an HTTP/2 connection — at once, each with a log line naming
// the reason, while those of a client still trusted stay open and keep working.
func TestRevocationClosesOpenConnections(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	carol, alice := e.ca.Issue("carol"), e.ca.Issue("alice")
	open := func(listener, proto string, who *tls.Certificate) *tls.Conn {
		cfg := e.tlsConfig(tls.VersionTLS13, who)
		if proto != "" {
			cfg.NextProtos = []string{proto}
		}
		c, err := tls.Dial("tcp", e.addr(listener), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// use proves a connection serves: an echo on the relay and the WebSocket (upgraded
	// on first use), a request on HTTP/1.1, the server's SETTINGS on HTTP/2.
	use := func(c *openConn) error {
		if err := c.c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			return err
		}
		if c.br == nil {
			c.br = bufio.NewReader(c.c)
		}
		switch c.kind {
		case "ws", "relay":
			if c.kind == "ws" && !c.upgraded {
				if _, err := c.c.Write([]byte("GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")); err != nil {
					return err
				}
				resp, err := http.ReadResponse(c.br, nil)
				if err != nil {
					return err
				}
				if resp.StatusCode != http.StatusSwitchingProtocols {
					return errors.New(resp.Status)
				}
				c.upgraded = true
			}
			if _, err := c.c.Write([]byte("ping\n")); err != nil {
				return err
			}
			_, err := c.br.ReadString('\n')
			return err
		case "h1":
			if _, err := c.c.Write([]byte("GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n")); err != nil {
				return err
			}
			resp, err := http.ReadResponse(c.br, nil)
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, resp.Body)
			return err
		default: // h2: the client preface and an empty SETTINGS frame; read the answer
			if _, err := c.c.Write([]byte(h2Idle)); err != nil {
				return err
			}
			_, err := io.ReadFull(c.br, make([]byte, 9))
			return err
		}
	}
	var carols, alices []*openConn
	for _, k := range []struct{ listener, proto, kind string }{{"tcpssl", "", "relay"}, {"mutual", "http/1.1", "h1"}, {"mutual", "http/1.1", "ws"}, {"mutual", "h2", "h2"}} {
		for _, who := range []struct {
			leaf *tls.Certificate
			into *[]*openConn
		}{{new(carol.TLS()), &carols}, {new(alice.TLS()), &alices}} {
			c := &openConn{kind: k.kind, c: open(k.listener, k.proto, who.leaf)}
			if err := use(c); err != nil {
				t.Fatalf("%s before the reload: %v", k.kind, err)
			}
			*who.into = append(*who.into, c)
		}
	}

	e.writeFile("ca.crl", e.ca.CRL(24*time.Hour, e.revoked.Cert, carol.Cert))
	if err := e.waitReload(); err != nil {
		t.Fatal(err)
	}
	for _, c := range carols {
		if err := c.c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		_, err := io.Copy(io.Discard, c.br)
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			t.Fatalf("carol's %s connection stayed open after her certificate was revoked", c.kind)
		}
	}
	for range carols {
		// A connection line, or the line of the request in flight (the WebSocket's).
		line := e.sink.Next(t, map[string]any{"client_subject": "CN=carol", "reason": "revoked"})
		if line["verify"] != "FAILED:revoked" {
			t.Fatalf("line %v", line)
		}
	}
	for _, c := range alices[:3] { // relay, HTTP/1.1 and WebSocket answer again
		if err := use(c); err != nil {
			t.Fatalf("alice's %s connection after the reload: %v", c.kind, err)
		}
	}
	// Once every relay has ended, carol's relay has one line: the one with the reason.
	for _, c := range alices {
		c.c.Close()
	}
	e.stopWatching()
	if err := e.srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := e.sink.Count(map[string]any{"msg": "connection", "listener": "tcpssl", "client_subject": "CN=carol"}); n != 1 {
		t.Errorf("carol's relay closed by the reload logged %d connection lines, want 1", n)
	}
	// Her WebSocket, a request in flight, has its request line with the reason, and
	// no connection line besides.
	if n := e.sink.Count(map[string]any{"path": "/ws", "client_subject": "CN=carol", "reason": "revoked"}); n != 1 {
		t.Errorf("carol's WebSocket request line with the reason: %d, want 1", n)
	}
	if n := e.sink.Count(map[string]any{"client_subject": "CN=carol", "reason": "revoked"}); n != len(carols) {
		t.Errorf("%d lines with the reason for carol's %d connections", n, len(carols))
	}
}

// openConn is one open client connection of TestRevocationClosesOpenConnections.
type openConn struct {
	kind     string // relay, h1, ws, h2
	c        *tls.Conn
	br       *bufio.Reader
	upgraded bool
}
