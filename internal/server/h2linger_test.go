package server_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/net/http2"

	"tlsgate/internal/pki"
)

// TestH2CutBehindFront: an HTTP/2 client behind a trusted front (the connection opens
// with a PROXY header) cut for a SETTINGS flood reads GOAWAY(ENHANCE_YOUR_CALM), then a
// clean end (close_notify, and the half-close of the TCP connection under the PROXY
// one), from the listener's lingering close, which counts it. Before, the cut's own
// lingering close was not counted nor bounded, and found no half-close on the PROXY
// connection: the client saw its end only when that close ran out (1 s); the
// half-close itself is pinned by the listener's TestCutHalfClosesBehindProxy.
func TestH2CutBehindFront(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256, func(*env) (string, string) {
		return "", "  - {id: fronted, protocol: https, listen: 127.0.0.1:0, target_group: web, accept_proxy_protocol: [127.0.0.0/8],\n" +
			"     ssl: {mode: one_way, server_certificates: [site]}}\n"
	})
	raw, err := net.Dial("tcp", e.addr("fronted"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(raw, "PROXY TCP4 192.0.2.1 192.0.2.2 40000 443\r\n"); err != nil {
		t.Fatal(err)
	}
	cfg := e.tlsConfig(tls.VersionTLS13, nil)
	cfg.NextProtos = []string{"h2"}
	c := tls.Client(raw, cfg)
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN %q, want h2", p)
	}
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	w := http2.NewFramer(c, nil)
	for range 300 { // past the guard's 100 SETTINGS at once
		if err := w.WriteSettings(); err != nil {
			t.Fatalf("the flood's writes failed: %v", err)
		}
	}
	r := http2.NewFramer(io.Discard, c)
	var code http2.ErrCode = 1 << 31 // none yet
	for {
		f, err := r.ReadFrame()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("the connection ended with %v, want EOF", err)
			}
			break
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			code = g.ErrCode
		}
	}
	if code != http2.ErrCodeEnhanceYourCalm {
		t.Fatalf("GOAWAY %v, want ENHANCE_YOUR_CALM", code)
	}
	line := e.sink.Next(t, map[string]any{"msg": "connection", "listener": "fronted"})
	if msg, _ := line["error"].(string); !strings.Contains(msg, "ENHANCE_YOUR_CALM") || line["client"] != "192.0.2.1:40000" {
		t.Fatalf("connection line %v, want the cut of client 192.0.2.1:40000", line)
	}
	// Counted before the line was logged.
	if n := testutil.ToFloat64(e.metrics.Lingering.WithLabelValues("fronted", "lingered")); n != 1 {
		t.Fatalf("%v lingering closes counted, want 1", n)
	}
}
