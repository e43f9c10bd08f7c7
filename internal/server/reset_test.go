package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"tlsgate/internal/pki"
)

// h2conn is a raw HTTP/2 client connection: the preface and SETTINGS are sent, frames
// are written with the Framer.
type h2conn struct {
	*http2.Framer
	c net.Conn
}

func dialH2(t *testing.T, e *env, id string) *h2conn {
	t.Helper()
	c := dialALPNH2(t, e, id)
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	f := http2.NewFramer(c, c)
	if err := f.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	// Read what the server sends (its SETTINGS, answers) so it never blocks on us.
	go func() { _, _ = io.Copy(io.Discard, c) }()
	return &h2conn{Framer: f, c: c}
}

// headers opens stream id with a GET of path.
func (h *h2conn) headers(t *testing.T, id uint32, path string) {
	t.Helper()
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "localhost"}, {":path", path}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := h.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: buf.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
}

// TestStreamResetsDoNotFailTarget (issue 18 item 1): HEADERS + RST_STREAM(CANCEL)
// pairs cancel the backend dials of their streams; a dial cancelled by the client is
// not the target's failure, so the next client is served (200, not 503).
func TestStreamResetsDoNotFailTarget(t *testing.T) {
	var hold atomic.Bool
	hold.Store(true)
	dialing := make(chan struct{}, 16)
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		e.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			if hold.Load() {
				dialing <- struct{}{}
				<-ctx.Done() // the dial is in progress when the client resets
			}
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}
		return "", ""
	})
	h := dialH2(t, e, "one_way")
	for i := range 5 {
		id := uint32(2*i + 1)
		h.headers(t, id, "/x")
		select {
		case <-dialing:
		case <-time.After(10 * time.Second):
			t.Fatalf("stream %d: no dial to the target (marked failing by the earlier resets?); log: %v", id, e.sink.Next(t, map[string]any{"msg": "request"}))
		}
		if err := h.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
			t.Fatal(err)
		}
		e.sink.Next(t, map[string]any{"msg": "request", "listener": "one_way"})
	}
	hold.Store(false)
	for i := range 3 {
		resp, _, err := e.request("one_way", e.tlsConfig(tls.VersionTLS13, nil), nil, i%2 == 0)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d after the resets: %d, want 200 (the target is healthy)", i, resp.StatusCode)
		}
	}
}
