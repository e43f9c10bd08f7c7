package server_test

import (
	"bufio"
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
// connection, an HTTP/2 connection — at once, with a log line naming the reason, while
// the connections of a client still trusted stay open and keep working.
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
	// use proves a connection serves: an echo on the relay, a request on HTTP/1.1, the
	// server's SETTINGS on HTTP/2.
	use := func(c *tls.Conn, kind string) error {
		if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			return err
		}
		switch kind {
		case "relay":
			if _, err := c.Write([]byte("ping\n")); err != nil {
				return err
			}
			_, err := bufio.NewReader(c).ReadString('\n')
			return err
		case "h1":
			if _, err := c.Write([]byte("GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n")); err != nil {
				return err
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, resp.Body)
			return err
		default: // h2: the client preface and an empty SETTINGS frame; read the answer
			if _, err := c.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")); err != nil {
				return err
			}
			_, err := io.ReadFull(c, make([]byte, 9))
			return err
		}
	}
	type conn struct {
		kind string
		c    *tls.Conn
	}
	var carols, alices []conn
	for _, k := range []struct{ listener, proto, kind string }{{"tcpssl", "", "relay"}, {"mutual", "http/1.1", "h1"}, {"mutual", "h2", "h2"}} {
		for _, who := range []struct {
			leaf *tls.Certificate
			into *[]conn
		}{{new(carol.TLS()), &carols}, {new(alice.TLS()), &alices}} {
			c := open(k.listener, k.proto, who.leaf)
			if err := use(c, k.kind); err != nil {
				t.Fatalf("%s before the reload: %v", k.kind, err)
			}
			*who.into = append(*who.into, conn{k.kind, c})
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
		_, err := io.Copy(io.Discard, c.c)
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			t.Fatalf("carol's %s connection stayed open after her certificate was revoked", c.kind)
		}
	}
	for range carols {
		line := e.sink.Next(t, map[string]any{"msg": "connection", "client_subject": "CN=carol", "reason": "revoked"})
		if line["verify"] != "FAILED:revoked" {
			t.Fatalf("line %v", line)
		}
	}
	for _, c := range alices[:2] { // relay and HTTP/1.1 answer again; HTTP/2 was read above
		if err := use(c.c, c.kind); err != nil {
			t.Fatalf("alice's %s connection after the reload: %v", c.kind, err)
		}
	}
}
