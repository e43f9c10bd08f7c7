package listener

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"tlsgate/internal/metrics"
)

// frame is an HTTP/2 frame of type typ on stream with payload.
func frame(typ byte, flags byte, stream uint32, payload []byte) []byte {
	b := make([]byte, 9, 9+len(payload))
	b[0], b[1], b[2] = byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload))
	b[3], b[4] = typ, flags
	binary.BigEndian.PutUint32(b[5:], stream)
	return append(b, payload...)
}

// settingsFlood is a client's preface and twice as many SETTINGS frames as the guard
// lets through at once.
func settingsFlood() []byte {
	flood := []byte(clientPreface)
	for range 2 * int(controlFrames.burst) {
		flood = append(flood, frame(frameSettings, 0, 0, nil)...)
	}
	return flood
}

// slowPair is a loopback TCP connection whose client side has a small receive buffer
// (a window of a few KiB: what the server sends past it waits in the server's send
// queue) and whose server side is wrapped as the listener wraps it.
func slowPair(t *testing.T) (*sockConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return errors.Join(err, serr)
	}}
	client, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	raw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	// Room for all the server writes below whatever the kernel's autotuning does, so
	// no write waits on the client.
	if err := raw.(*net.TCPConn).SetWriteBuffer(1 << 20); err != nil {
		t.Fatal(err)
	}
	s := wrapSocket(raw).(*sockConn)
	t.Cleanup(func() { s.Close() })
	return s, client
}

// TestCutLingers: a client floods SETTINGS without reading until it has sent
// everything, while the server has more queued for it than its window takes. After
// the cut, net/http closes the connection as soon as its next write fails (every write
// after a cut fails); that Close must leave the socket to the guard's lingering close.
// Before, it closed the socket at once: the rest of the flood then reached a closed
// socket, the kernel answered with a reset and dropped the send queue, the GOAWAY with
// it (TestH2Floods/SETTINGS failed so under load, when the GOAWAY had not left yet).
func TestCutLingers(t *testing.T) {
	t.Parallel()
	s, client := slowPair(t)
	srv, cl := handshake(t, s, client)
	cut := make(chan string, 1)
	l, _, slots := lingerListener(t)
	// The close lingers until the client closes (guarded): this test is about who
	// closes, not about the bound.
	g := guarded(l, srv, &State{WriteTimeout: 20 * time.Second}, func(reason string) { cut <- reason })
	// The server's queued output: 64 KiB of DATA, whole frames (a response).
	data := bytes.Repeat(frame(frameData, 0, 1, make([]byte, 16<<10)), 4)
	if _, err := g.Write(data); err != nil {
		t.Fatal(err)
	}
	read := make(chan error, 1)
	go func() { // the HTTP/2 server's frame reader
		_, err := io.Copy(io.Discard, g)
		read <- err
	}()
	flood := settingsFlood()
	if _, err := cl.Write(flood); err != nil {
		t.Fatal(err)
	}
	select {
	case <-g.sent:
	case <-time.After(20 * time.Second):
		t.Fatal("the flood was not cut")
	}
	// The HTTP/2 server's next write fails, and it closes the connection.
	if _, err := g.Write(frame(frameSettings, flagAck, 0, nil)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after the cut: %v, want net.ErrClosed", err)
	}
	_ = g.Close()
	// The rest of the flood, then the client reads.
	_, _ = cl.Write(bytes.Repeat(frame(frameSettings, 0, 0, nil), 4000))
	_ = cl.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(cl)
	if err != nil {
		t.Fatalf("read %d bytes, then %v; want all data, GOAWAY and EOF", len(got), err)
	}
	want := append(data, goAway(0, codeEnhanceYourCalm)...)
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want %d bytes: the data and GOAWAY(ENHANCE_YOUR_CALM)", len(got), len(want))
	}
	_ = cl.Close()
	// The cut (and the lingering close it started) ran on the reader: its end orders
	// them before the wait for the lingering close.
	if err := <-read; !errors.Is(err, errCalm("too many SETTINGS/PING frames")) {
		t.Fatalf("the server's read ended with %v, want the cut", err)
	}
	if reason := <-cut; reason != "http2: too many SETTINGS/PING frames" {
		t.Fatalf("cut for %q", reason)
	}
	slots.wg.Wait()
}

// TestCutBeforeServerPreface: a flood cut before the server wrote anything (net/http
// flushes its SETTINGS on a goroutine of its own, which the guard's cut can overtake)
// sends the server's preface, an empty SETTINGS, before the GOAWAY: a GOAWAY as the
// server's first frame is a protocol error to Go's client, which then never sees the
// code.
func TestCutBeforeServerPreface(t *testing.T) {
	t.Parallel()
	s, client := pair(t)
	srv, cl := handshake(t, s, client)
	l, _, slots := lingerListener(t)
	g := guarded(l, srv, &State{}, nil)
	read := make(chan struct{})
	go func() { // the HTTP/2 server's frame reader
		_, _ = io.Copy(io.Discard, g)
		close(read)
	}()
	flood := settingsFlood()
	if _, err := cl.Write(flood); err != nil {
		t.Fatal(err)
	}
	_ = cl.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(cl)
	if err != nil {
		t.Fatalf("read %d bytes, then %v; want SETTINGS, GOAWAY and EOF", len(got), err)
	}
	if want := append(emptySettings(), goAway(0, codeEnhanceYourCalm)...); !bytes.Equal(got, want) {
		t.Fatalf("read % x, want % x: an empty SETTINGS, then GOAWAY(ENHANCE_YOUR_CALM)", got, want)
	}
	_ = cl.Close()
	<-read
	_ = g.Close()
	slots.wg.Wait()
}

// lingerListener is a listener that has room for lingering closes and counts them.
func lingerListener(t *testing.T) (*Listener, *metrics.Metrics, *Lingerers) {
	t.Helper()
	m := metrics.New()
	slots := NewLingerers(8)
	l := &Listener{deps: Deps{Metrics: m, Lingerers: slots}}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	t.Cleanup(l.cancel)
	return l, m, slots
}

// guarded is a guard on tc whose cut lingers through l (listener "web") until the
// client closes: the limits are long, so that a loaded machine's delays do not end the
// lingering close before the client reads.
func guarded(l *Listener, tc *tls.Conn, st *State, onCut func(string)) *h2guard {
	st.ID = "web"
	g := newH2Guard(l, tc, st, nil, onCut)
	g.lim = lingerLimits{silence: time.Minute, total: time.Minute, bytes: 1 << 30}
	return g
}

// TestTimerCutWakesReader: a header block that does not end within header_timeout is
// cut from its timer while the HTTP/2 server's reader is inside a read of the socket.
// The lingering close must be the socket's only reader (it reads under TLS and resets
// the socket's read state), so the cut wakes that read and hands the socket over once
// it returned; the client still reads the server's SETTINGS, the GOAWAY and the
// half-close, and the close is counted. Before, the reader stayed in its read, beside
// h2guard's own lingering close, until that ended.
func TestTimerCutWakesReader(t *testing.T) {
	t.Parallel()
	l, m, slots := lingerListener(t)
	s, client := pair(t)
	srv, cl := handshake(t, s, client)
	cut := make(chan struct{})
	g := guarded(l, srv, &State{HeaderTimeout: 50 * time.Millisecond}, func(string) { close(cut) })
	read := make(chan error, 1)
	go func() { // the HTTP/2 server's frame reader
		_, err := io.Copy(io.Discard, g)
		read <- err
	}()
	// A header block that never ends: HEADERS without END_HEADERS, then nothing.
	if _, err := cl.Write(append([]byte(clientPreface), frame(frameHeaders, 0, 1, []byte{0x82})...)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-read:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("the server's read ended with %v, want net.ErrClosed", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the server's read did not return after the cut")
	}
	_ = cl.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(cl)
	if err != nil {
		t.Fatalf("read %d bytes, then %v; want SETTINGS, GOAWAY and the half-close", len(got), err)
	}
	if want := append(emptySettings(), goAway(1, codeEnhanceYourCalm)...); !bytes.Equal(got, want) {
		t.Fatalf("read % x, want % x", got, want)
	}
	if n := testutil.ToFloat64(m.Lingering.WithLabelValues("web", "lingered")); n != 1 {
		t.Fatalf("%v lingering closes counted, want 1", n)
	}
	_ = cl.Close()
	<-cut
	slots.wg.Wait()
	_ = g.Close()
}

// TestCutHalfClosesBehindProxy: an HTTP/2 connection from a trusted front (TLS over a
// PROXY protocol connection, which has no half-close of its own) cut for a flood is
// half-closed on the TCP connection under it: the client reads the GOAWAY and the end
// while it may still send. Before, h2guard's own lingering close looked for the
// half-close on the PROXY connection only, found none, and the client saw no end until
// the lingering close's bound ran out.
func TestCutHalfClosesBehindProxy(t *testing.T) {
	t.Parallel()
	l, _, slots := lingerListener(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, raw := loopPair(t, ln)
	if _, err := io.WriteString(client, "PROXY TCP4 192.0.2.1 192.0.2.2 40000 443\r\n"); err != nil {
		t.Fatal(err)
	}
	srv, cl := handshake(t, proxyproto.NewConn(raw), client)
	g := guarded(l, srv, &State{}, nil)
	read := make(chan struct{})
	go func() { // the HTTP/2 server's frame reader
		_, _ = io.Copy(io.Discard, g)
		close(read)
	}()
	if _, err := cl.Write(settingsFlood()); err != nil {
		t.Fatal(err)
	}
	_ = cl.SetDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(cl)
	if err != nil {
		t.Fatalf("read %d bytes, then %v; want SETTINGS, GOAWAY and the half-close", len(got), err)
	}
	if want := append(emptySettings(), goAway(0, codeEnhanceYourCalm)...); !bytes.Equal(got, want) {
		t.Fatalf("read % x, want % x", got, want)
	}
	// The lingering close still reads what the client sends.
	if err := pump(cl, 1<<20); err != nil {
		t.Fatalf("the client's writes after the half-close failed: %v", err)
	}
	_ = cl.Close()
	<-read
	slots.wg.Wait()
	_ = g.Close()
}
