package probe_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/pires/go-proxyproto"

	"tlsgate/internal/probe"
)

// TestLocalErrorsHaveEntries: each Go error the table of local errors names (issue #4:
// every alert and common Go/OpenSSL error has a cause and a fix, with a test covering
// each entry) is diagnosed by its own entry, as Go's crypto/tls and net words it.
func TestLocalErrorsHaveEntries(t *testing.T) {
	for _, tc := range []struct{ err, cause string }{
		{"tls: first record does not look like a TLS handshake", "did not answer with TLS"},
		{"tls: server selected unsupported protocol version 301", "chose a TLS version this client does not allow"},
		{"tls: no cipher suite supported by both client and server", "no common cipher suite"},
		{"read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer", "reset the connection"},
		{"EOF", "closed the connection without a TLS alert"},
	} {
		d := probe.Diagnose(errors.New(tc.err))
		if !strings.Contains(d.Cause, tc.cause) || d.Fix == "" {
			t.Errorf("%q: diagnosis %+v, want a cause with %q and a fix", tc.err, d, tc.cause)
		}
	}
}

// TestServerClosesOrResets: a server that reads the ClientHello and then closes the
// connection, or resets it, is named as such by probe against a real socket.
func TestServerClosesOrResets(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reset bool
		cause []string // either: a reset can reach the client as EOF
	}{
		{"close", false, []string{"closed the connection without a TLS alert"}},
		{"reset", true, []string{"reset the connection", "closed the connection without a TLS alert"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					// The whole ClientHello record: closing with unread input would reset.
					hdr := make([]byte, 5)
					if _, err := io.ReadFull(c, hdr); err == nil && hdr[0] == 22 { // a handshake record
						_, _ = io.ReadFull(c, make([]byte, int(hdr[3])<<8|int(hdr[4])))
					}
					if tc.reset {
						_ = c.(*net.TCPConn).SetLinger(0)
					}
					c.Close()
				}
			}()
			f := newFixture(t)
			res, _ := record(t, f.opts(t, ln.Addr().String(), nil, false))
			found := false
			for _, c := range tc.cause {
				found = found || strings.Contains(res.Diagnosis.Cause, c)
			}
			if res.OK || !found {
				t.Fatalf("result %+v; want a cause with one of %q", res, tc.cause)
			}
		})
	}
}

// TestProxyProtocolExpected: a port that requires a PROXY header (tlsgate's
// accept_proxy_protocol uses go-proxyproto's REQUIRE) resets a plain ClientHello; probe
// retries after a PROXY v2 header, sees the server's certificate, and says the port
// expects PROXY protocol (user-asks 2.5 item 7) instead of only guessing at it.
func TestProxyProtocolExpected(t *testing.T) {
	f := newFixture(t)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pl := &proxyproto.Listener{Listener: inner, ConnPolicy: func(proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) { return proxyproto.REQUIRE, nil }}
	ln := tls.NewListener(pl, &tls.Config{Certificates: []tls.Certificate{f.server.TLS()}})
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if err := c.(*tls.Conn).Handshake(); err != nil {
					_ = c.(*tls.Conn).NetConn().(*proxyproto.Conn).Raw().(*net.TCPConn).SetLinger(0)
				}
			}()
		}
	}()
	res, steps := record(t, f.opts(t, inner.Addr().String(), nil, false))
	if res.OK || !strings.Contains(res.Verdict, "the port expects a PROXY protocol header before TLS") ||
		!strings.Contains(steps["retry"].Title, "Retry after a PROXY protocol v2 header: the server answered") {
		t.Fatalf("result %+v; retry step %+v", res, steps["retry"])
	}
}
