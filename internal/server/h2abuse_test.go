package server_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"tlsgate/internal/pki"
)

// h2raw is a raw HTTP/2 client on one TLS connection: frames written by hand, frames
// read on a goroutine into a channel.
type h2raw struct {
	t      *testing.T
	c      *tls.Conn
	w      *http2.Framer
	wmu    sync.Mutex
	frames chan frame // closed when the connection ends
	goAway chan http2.ErrCode
	acked  chan struct{} // closed once the server's SETTINGS were acknowledged
	ended  chan struct{} // closed when the read loop ended, after end is set
	end    error         // why it ended
	read   atomic.Int64  // frames read
	werr   error         // the first write error, under wmu
}

// dialALPNH2 connects to listener id over TLS 1.3 with ALPN h2, which it must
// negotiate; the connection is closed when the test ends.
func dialALPNH2(t *testing.T, e *env, id string) *tls.Conn {
	t.Helper()
	cfg := e.tlsConfig(tls.VersionTLS13, nil)
	cfg.NextProtos = []string{"h2"}
	c, err := tls.Dial("tcp", e.addr(id), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN %q, want h2", p)
	}
	return c
}

// rawH2 connects to listener id with ALPN h2 and sends the preface and settings.
func rawH2(t *testing.T, e *env, id string, settings ...http2.Setting) *h2raw {
	t.Helper()
	c := dialALPNH2(t, e, id)
	h := &h2raw{t: t, c: c, w: http2.NewFramer(c, nil), frames: make(chan frame, 1024), goAway: make(chan http2.ErrCode, 1), acked: make(chan struct{}), ended: make(chan struct{})}
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	h.write(func(w *http2.Framer) error { return w.WriteSettings(settings...) })
	r := http2.NewFramer(io.Discard, c)
	r.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	r.MaxHeaderListSize = 1 << 20
	go h.readLoop(r)
	// The ACK must not come between the frames of a header block the test sends.
	select {
	case <-h.acked:
	case <-time.After(20 * time.Second):
		t.Fatal("no SETTINGS from the server")
	}
	return h
}

// readLoop reads frames until the connection ends: GOAWAY goes to goAway, SETTINGS are
// acknowledged, response headers, resets and data go to frames.
func (h *h2raw) readLoop(r *http2.Framer) {
	defer close(h.frames)
	for {
		f, err := r.ReadFrame()
		if err != nil {
			h.end = err
			close(h.ended)
			return
		}
		h.read.Add(1)
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			select {
			case h.goAway <- f.ErrCode:
			default:
			}
		case *http2.SettingsFrame:
			if !f.IsAck() {
				h.write(func(w *http2.Framer) error { return w.WriteSettingsAck() })
				select {
				case <-h.acked:
				default:
					close(h.acked)
				}
			}
		case *http2.MetaHeadersFrame:
			n, _ := strconv.Atoi(f.PseudoValue("status"))
			h.deliver(frame{stream: f.StreamID, status: n, end: f.StreamEnded()})
		case *http2.RSTStreamFrame:
			h.deliver(frame{stream: f.StreamID, reset: true, code: f.ErrCode})
		case *http2.DataFrame:
			h.deliver(frame{stream: f.StreamID, data: bytes.Clone(f.Data()), end: f.StreamEnded()})
		}
	}
}

// frame is what a test looks at of a frame the server sent (the Framer's frames are
// only valid until it reads the next one): a response header's status, a reset, data.
type frame struct {
	stream uint32
	status int
	reset  bool
	code   http2.ErrCode
	data   []byte
	end    bool
}

// deliver passes a frame to the test, or drops it for a test that does not look.
func (h *h2raw) deliver(f frame) {
	select {
	case h.frames <- f:
	default:
	}
}

// write runs one framer write; false once the connection failed.
func (h *h2raw) write(f func(w *http2.Framer) error) bool {
	h.wmu.Lock()
	defer h.wmu.Unlock()
	err := f(h.w)
	if err != nil && h.werr == nil {
		h.werr = err
	}
	return err == nil
}

// block encodes a GET of path with extra fields.
func block(path string, extra ...hpack.HeaderField) []byte {
	var b bytes.Buffer
	enc := hpack.NewEncoder(&b)
	enc.SetMaxDynamicTableSizeLimit(0)
	for _, f := range append([]hpack.HeaderField{
		{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: "localhost"}, {Name: ":path", Value: path},
	}, extra...) {
		_ = enc.WriteField(f)
	}
	return b.Bytes()
}

// request sends a header block on stream id in frames of at most 16 KiB.
func (h *h2raw) request(id uint32, blk []byte) {
	first := true
	for first || len(blk) > 0 {
		k := min(len(blk), 16<<10)
		frag, end := blk[:k], k == len(blk)
		blk = blk[k:]
		h.write(func(w *http2.Framer) error {
			if first {
				return w.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: frag, EndStream: true, EndHeaders: end})
			}
			return w.WriteContinuation(id, end, frag)
		})
		first = false
	}
}

// status waits for the response header of stream id and returns its status; 0 when
// the connection ended first.
func (h *h2raw) status(id uint32) int {
	h.t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case f, ok := <-h.frames:
			if !ok {
				return 0 // the connection was closed
			}
			if f.status != 0 && f.stream == id {
				return f.status
			}
		case <-timeout:
			h.t.Fatalf("no response on stream %d", id)
		}
	}
}

// wantCalm waits for GOAWAY(ENHANCE_YOUR_CALM) and the end of the connection, while
// flood writes until the connection fails. A connection that ends without GOAWAY
// fails the test at once, with what the client saw.
func (h *h2raw) wantCalm(flood func() bool) {
	h.t.Helper()
	done := make(chan struct{})
	sent := 0
	go func() {
		defer close(done)
		for flood() {
			sent++
		}
	}()
	var code http2.ErrCode
	select {
	case code = <-h.goAway:
	case <-h.ended:
		select {
		case code = <-h.goAway: // read just before the end
		default:
			_ = h.c.Close()
			<-done
			h.t.Fatalf("the connection ended without GOAWAY after %d frames read (%v) and %d flood writes (%v)", h.read.Load(), h.end, sent, h.werr)
		}
	case <-time.After(60 * time.Second):
		h.t.Fatal("no GOAWAY: the flood was not cut")
	}
	if code != http2.ErrCodeEnhanceYourCalm {
		h.t.Fatalf("GOAWAY %v, want ENHANCE_YOUR_CALM", code)
	}
	for range h.frames { // the connection is closed after it
	}
	_ = h.c.Close()
	<-done
	h.t.Logf("cut; %d flood writes went out before the connection failed", sent)
}

// TestH2Floods: frames that cost the client nothing and the server work are answered,
// past a bound, with GOAWAY(ENHANCE_YOUR_CALM) and the connection closed. Before the
// guard all three left the connection open: net/http's server cuts none of them.
func TestH2Floods(t *testing.T) {
	e, _ := abuseEnv(t, "", "")
	t.Run("rapid reset", func(t *testing.T) {
		t.Parallel()
		h := rawH2(t, e, "guard")
		blk := block("/")
		id, pairs := uint32(1), 0
		h.wantCalm(func() bool {
			if pairs == 20000 {
				return false
			}
			pairs++
			ok := h.write(func(w *http2.Framer) error {
				if err := w.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: blk, EndStream: true, EndHeaders: true}); err != nil {
					return err
				}
				return w.WriteRSTStream(id, http2.ErrCodeCancel)
			})
			id += 2
			return ok
		})
	})
	t.Run("empty CONTINUATION", func(t *testing.T) {
		t.Parallel()
		h := rawH2(t, e, "guard")
		h.write(func(w *http2.Framer) error {
			return w.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block("/"), EndStream: true})
		})
		n := 0
		h.wantCalm(func() bool {
			n++
			return n <= 1000000 && h.write(func(w *http2.Framer) error { return w.WriteContinuation(1, false, nil) })
		})
	})
	t.Run("SETTINGS", func(t *testing.T) {
		t.Parallel()
		h := rawH2(t, e, "guard")
		n := 0
		h.wantCalm(func() bool {
			n++
			return n <= 3000000 && h.write(func(w *http2.Framer) error { return w.WriteSettings() })
		})
	})
	t.Run("PING", func(t *testing.T) {
		t.Parallel()
		h := rawH2(t, e, "guard")
		n := 0
		h.wantCalm(func() bool {
			n++
			return n <= 3000000 && h.write(func(w *http2.Framer) error { return w.WritePing(false, [8]byte{}) })
		})
	})
}

// TestH2HeaderTimeout: a header block that never ends is cut at header_timeout (here
// 1s), not at idle_timeout (here 1h), where it lived before.
func TestH2HeaderTimeout(t *testing.T) {
	e, _ := abuseEnv(t, ", header_timeout: 1s, idle_timeout: 1h", "")
	h := rawH2(t, e, "guard")
	h.write(func(w *http2.Framer) error {
		return w.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block("/"), EndStream: true})
	})
	h.wantCalm(func() bool { return false })
}

// TestH2HeaderLimits: HTTP/2 requests past the header limits get 431 and are not
// forwarded, as HTTP/1 ones.
func TestH2HeaderLimits(t *testing.T) {
	e, b := abuseEnv(t, "", "")
	fields := func(n, size int) []hpack.HeaderField {
		var fs []hpack.HeaderField
		for i := range n {
			fs = append(fs, hpack.HeaderField{Name: "x-f" + strconv.Itoa(i), Value: strings.Repeat("a", size)})
		}
		return fs
	}
	for _, tc := range []struct {
		name   string
		fields []hpack.HeaderField
		status int // 0: the connection is closed (net/http's cut of a block far too large)
	}{
		{"100 fields pass", fields(100, 10), 200},
		{"101 fields", fields(101, 10), 431},
		{"10,000 fields", fields(10000, 1), 0},
		{"a field of 8 KiB passes", fields(1, 8<<10-len("x-f0: ")), 200},
		{"a field over 8 KiB", fields(1, 8<<10), 431},
		{"a block over 64 KiB", fields(9, 8000), 431},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := rawH2(t, e, "guard")
			before := b.seen.Load()
			h.request(1, block("/", tc.fields...))
			if got := h.status(1); got != tc.status {
				t.Fatalf("status %d, want %d", got, tc.status)
			}
			if forwarded := b.seen.Load() != before; forwarded != (tc.status == 200) {
				t.Fatalf("forwarded: %v", forwarded)
			}
		})
	}
}

// TestSlowReaders: a client that stops reading a 32 MiB response is let go after
// write_timeout (here 1s) without progress, and so is the backend exchange: over
// HTTP/1 (a tiny receive window) the connection is closed, over HTTP/2 (a zero
// INITIAL_WINDOW_SIZE) the stream is reset. Before, both held for minutes.
func TestSlowReaders(t *testing.T) {
	e, b := abuseEnv(t, ", write_timeout: 1s", "")
	t.Run("HTTP/1", func(t *testing.T) {
		d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			})
			return errors.Join(err, serr)
		}}
		raw, err := d.Dial("tcp", e.addr("guard"))
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		c := tls.Client(raw, e.tlsConfig(tls.VersionTLS13, nil))
		if _, err := io.WriteString(c, "GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		b.waitReleased(t)
		// The connection was closed: what was sent ends short of the response.
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, err := io.Copy(io.Discard, c)
		if ne, ok := errors.AsType[net.Error](err); n >= bigSize || ok && ne.Timeout() {
			t.Fatalf("read %d bytes (%v): the connection was not closed", n, err)
		}
	})
	t.Run("HTTP/2", func(t *testing.T) {
		h := rawH2(t, e, "guard", http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
		h.request(1, block("/big"))
		if got := h.status(1); got != 200 {
			t.Fatalf("status %d", got)
		}
		b.waitReleased(t)
		timeout := time.After(20 * time.Second)
		for {
			select {
			case f, ok := <-h.frames:
				if !ok {
					t.Fatal("connection closed without a reset of the stream")
				}
				if f.reset && f.stream == 1 {
					return
				}
			case <-timeout:
				t.Fatal("the stream of a client that opens no window was not reset")
			}
		}
	})
}

// TestQuietStreams: write_timeout bounds writes, not the quiet time between them: a
// response that pauses longer (server-sent events, gRPC streams) is delivered whole.
func TestQuietStreams(t *testing.T) {
	e, _ := abuseEnv(t, ", write_timeout: 1s", "")
	t.Run("HTTP/1", func(t *testing.T) {
		t.Parallel()
		h := dialH1(t, e, "guard")
		h.send("GET /quiet HTTP/1.1\r\nHost: localhost\r\n\r\n")
		resp, err := http.ReadResponse(h.br, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if body, err := io.ReadAll(resp.Body); err != nil || string(body) != "ab" {
			t.Fatalf("body %q, %v", body, err)
		}
	})
	t.Run("HTTP/2", func(t *testing.T) {
		t.Parallel()
		h := rawH2(t, e, "guard")
		h.request(1, block("/quiet"))
		var body []byte
		for f := range h.frames {
			if f.reset {
				t.Fatalf("stream reset (%v) after %q", f.code, body)
			}
			body = append(body, f.data...)
			if f.end {
				if string(body) != "ab" {
					t.Fatalf("body %q", body)
				}
				return
			}
		}
		t.Fatalf("connection closed after %q", body)
	})
}

// TestH2HeaderBudget: HTTP/2 header blocks not yet finished take from max_header_memory
// as HTTP/1 headers do; past it the connection is cut (GOAWAY ENHANCE_YOUR_CALM).
func TestH2HeaderBudget(t *testing.T) {
	e, _ := abuseEnv(t, ", header_timeout: 1h", "max_header_memory: 40960")
	// One field of 60 KiB, of which each connection sends the first 16 KiB frame.
	frag := block("/", hpack.HeaderField{Name: "x-big", Value: strings.Repeat("a", 60<<10)})[:16<<10]
	calm := make(chan http2.ErrCode, 4)
	for range 4 { // 4 × 16 KiB: past the 40 KiB budget
		h := rawH2(t, e, "guard")
		h.write(func(w *http2.Framer) error {
			return w.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: frag, EndStream: true})
		})
		go func() { calm <- <-h.goAway }()
	}
	select {
	case code := <-calm:
		if code != http2.ErrCodeEnhanceYourCalm {
			t.Fatalf("GOAWAY %v, want ENHANCE_YOUR_CALM", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no connection cut past the header budget")
	}
}

// TestSlowReadersH2Backend: TestSlowReaders for a target group of protocol h2c: the
// client that stops reading is let go after write_timeout and the backend's stream
// released (issue 18 item 2 holds whatever the backend protocol).
func TestSlowReadersH2Backend(t *testing.T) {
	b := &abuseBackend{released: make(chan struct{}, 16)}
	backend := startH2CHandler(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(bigSize))
		chunk := make([]byte, 64<<10)
		var err error
		for sent := 0; err == nil && sent < bigSize; sent += len(chunk) {
			_, err = w.Write(chunk)
		}
		if err != nil {
			b.released <- struct{}{}
		}
	})
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		e.groups = fmt.Sprintf("  - {id: big, protocol: h2c, targets: [{address: %s}]}\n", backend)
		return "", "  - {id: guard, protocol: https, listen: 127.0.0.1:0, target_group: big,\n" +
			"     ssl: {mode: one_way, server_certificates: [site]}, write_timeout: 1s}\n"
	})
	h := rawH2(t, e, "guard", http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	h.request(1, block("/big"))
	if got := h.status(1); got != 200 {
		t.Fatalf("status %d", got)
	}
	b.waitReleased(t)
	timeout := time.After(20 * time.Second)
	for {
		select {
		case f, ok := <-h.frames:
			if !ok {
				t.Fatal("connection closed without a reset of the stream")
			}
			if f.reset && f.stream == 1 {
				return
			}
		case <-timeout:
			t.Fatal("the stream of a client that opens no window was not reset")
		}
	}
}

// startH2CHandler serves h with HTTP/2 in clear (prior knowledge) on loopback and
// returns its address.
func startH2CHandler(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &http.Protocols{}
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: p}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}
