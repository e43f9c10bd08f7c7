package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"tlsgate/internal/pki"
)

// TestH2InadequateSecurity: HTTP/2 over TLS 1.2 with a cipher RFC 9113 §9.2 forbids
// (CBC, here allowed by tls12-compat for HTTP/1 clients) gets GOAWAY
// INADEQUATE_SECURITY, as net/http's server answered when it saw the TLS connection,
// and a real client learns why its request failed. The client is net/http's HTTP/2
// transport: it sends its preface, SETTINGS and WINDOW_UPDATE, then a request whose
// body it keeps writing, and reads only once the request is on its way (else it may
// find the connection gone before its first request, and fail that one as "could not
// be established"). It failed in two ways before:
//   - GOAWAY came without the server's preface (SETTINGS must be the server's first
//     frame, RFC 9113 §3.4): the transport took it for a protocol error and never
//     saw the code (every time);
//   - the server closed with the client's preface unread: the kernel reset the
//     connection, the client's next write failed and the request failed with
//     "broken pipe" or "connection reset" instead (41 runs in 50 under -race).
func TestH2InadequateSecurity(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256, func(*env) (string, string) {
		return "", "  - {id: compat, protocol: https, listen: 127.0.0.1:0, target_group: web,\n     ssl: {mode: one_way, server_certificates: [site], policy: tls12-compat}}\n"
	})
	cfg := e.tlsConfig(tls.VersionTLS12, nil)
	cfg.NextProtos = []string{"h2"}
	cfg.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}
	// The transport speaks HTTP/2 with prior knowledge over what DialContext returns:
	// here a TLS connection that negotiated h2, whose reads the test holds (a
	// *tls.Conn of its own would read ahead of any hold below it).
	tr := &http.Transport{
		Protocols: new(http.Protocols),
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&tls.Dialer{Config: cfg}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			if p := c.(*tls.Conn).ConnectionState().NegotiatedProtocol; p != "h2" {
				return nil, errors.Join(fmt.Errorf("ALPN %q, want h2", p), c.Close())
			}
			return &gatedConn{Conn: c, open: make(chan struct{})}, nil
		},
	}
	tr.Protocols.SetUnencryptedHTTP2(true)
	cc, err := tr.NewClientConn(context.Background(), "http", e.addr("compat"))
	if err != nil {
		t.Fatalf("the client could not start: %v", err)
	}
	defer cc.Close()
	req, err := http.NewRequest(http.MethodPost, "http://localhost/upload", endless{})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cc.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("a response (%s) on an inadequate TLS connection", resp.Status)
	}
	// net/http's client gives the code only in the error's text (its CountError hook
	// is not passed to the HTTP/2 client).
	if !strings.Contains(err.Error(), "INADEQUATE_SECURITY") {
		t.Fatalf("the request failed with %v, not by GOAWAY INADEQUATE_SECURITY", err)
	}
	// The operator sees why (before, nothing was logged).
	line := e.sink.Next(t, map[string]any{"msg": "connection", "listener": "compat"})
	if msg, _ := line["error"].(string); !strings.Contains(msg, "INADEQUATE_SECURITY") || !strings.Contains(msg, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA") {
		t.Fatalf("connection line %v, want the refusal with the cipher suite", line)
	}
	// Its lingering close is the listener's, bounded and counted (counted before the line).
	if n := testutil.ToFloat64(e.metrics.Lingering.WithLabelValues("compat", "lingered")); n != 1 {
		t.Fatalf("%v lingering closes counted, want 1", n)
	}
}

// gatedConn holds its reads until its second write (the first is the client's
// preface, the second its request) has returned, or a write failed, or it is closed.
type gatedConn struct {
	net.Conn
	writes atomic.Int32
	once   sync.Once
	open   chan struct{}
}

func (c *gatedConn) unblock() { c.once.Do(func() { close(c.open) }) }

func (c *gatedConn) Read(p []byte) (int, error) {
	<-c.open
	return c.Conn.Read(p)
}

func (c *gatedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if c.writes.Add(1) == 2 || err != nil {
		c.unblock()
	}
	return n, err
}

func (c *gatedConn) Close() error {
	c.unblock()
	return c.Conn.Close()
}

// endless is a request body that never ends.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
