package server_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"tlsgate/internal/pki"
)

// TestDrainServesFreshConnection: a connection accepted before a drain (shutdown or a
// binary upgrade's handover) that has not sent its request yet gets one request,
// answered with Connection: close, rather than a close its client could not expect.
func TestDrainServesFreshConnection(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	addr := e.addr("one_way")
	cfg := e.tlsConfig(tls.VersionTLS13, nil)
	cfg.NextProtos = []string{"http/1.1"}
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e.stopWatching()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		done <- e.srv.Shutdown(ctx)
	}()
	// The drain has begun once the socket refuses new connections.
	for {
		nc, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		nc.Close()
	}
	if _, err := c.Write([]byte("GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("the fresh connection was closed by the drain: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d; want 200", resp.StatusCode)
	}
	// The socket refuses before the HTTP/1 connections are told (Shutdown closes the
	// listening socket, waits for handshakes in flight, then drains): a request that
	// came first is answered as usual and its idle connection closed by the drain.
	// Either way the client must learn that the connection ends.
	if !resp.Close {
		var ne net.Error
		if _, err := c.Read(make([]byte, 1)); err == nil || errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("the connection stayed open after the drain, without Connection: close (read: %v)", err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
