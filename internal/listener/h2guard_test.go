package listener

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
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
	g := newH2Guard(srv, &State{WriteTimeout: 20 * time.Second}, nil, func(reason string) { cut <- reason })
	// The close lingers until the client closes: this test is about who closes, not
	// about the bound (a loaded machine may take longer than lingerTime to get the
	// client to its reads).
	g.linger = time.Minute
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
	if err := <-read; !errors.Is(err, errCalm("too many SETTINGS/PING frames")) {
		t.Fatalf("the server's read ended with %v, want the cut", err)
	}
	if reason := <-cut; reason != "http2: too many SETTINGS/PING frames" {
		t.Fatalf("cut for %q", reason)
	}
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
	g := newH2Guard(srv, &State{}, nil, nil)
	g.linger = time.Minute                        // until the client closes, whatever the machine's load
	go func() { _, _ = io.Copy(io.Discard, g) }() // the HTTP/2 server's frame reader
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
	_ = g.Close()
}
