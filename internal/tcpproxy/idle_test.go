package tcpproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"testing/synctest"
	"time"
)

type relayResult struct {
	in, out int64
	err     error
}

// startRelay runs Copy between two in-memory pipes and returns the client's and the
// backend's far ends.
func startRelay(t *testing.T, idle time.Duration) (client, backend net.Conn, done <-chan relayResult) {
	c, cNear := net.Pipe()
	bNear, b := net.Pipe()
	ch := make(chan relayResult, 1)
	go func() {
		in, out, err := Copy(context.Background(), cNear, bNear, idle)
		ch <- relayResult{in, out, err}
	}()
	t.Cleanup(func() { c.Close(); b.Close() })
	return c, b, ch
}

func finished(done <-chan relayResult) (relayResult, bool) {
	select {
	case r := <-done:
		return r, true
	default:
		return relayResult{}, false
	}
}

// TestIdleRelayClosed: a relay silent in both directions is closed after exactly the
// idle timeout, with ErrIdle, and the backend sees its connection end.
func TestIdleRelayClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, backend, done := startRelay(t, 10*time.Second)
		time.Sleep(10*time.Second - time.Millisecond)
		synctest.Wait()
		if _, ok := finished(done); ok {
			t.Fatal("closed before the idle timeout")
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		r, ok := finished(done)
		if !ok {
			t.Fatal("an idle relay is still open after its idle timeout")
		}
		if !errors.Is(r.err, ErrIdle) {
			t.Fatalf("error %v, want ErrIdle", r.err)
		}
		if _, err := backend.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("backend read %v, want EOF (connection released)", err)
		}
	})
}

// TestIdleOneWayTraffic: traffic in one direction only keeps the relay open however
// long it lasts; the timeout counts from the last byte.
func TestIdleOneWayTraffic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, backend, done := startRelay(t, 10*time.Second)
		go func() { _, _ = io.Copy(io.Discard, client) }()
		for range 12 { // a minute of a byte every 5 s, backend → client
			time.Sleep(5 * time.Second)
			if _, err := backend.Write([]byte{1}); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if r, ok := finished(done); ok {
			t.Fatalf("a relay streaming one way was closed: %v", r.err)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		r, ok := finished(done)
		if !ok || !errors.Is(r.err, ErrIdle) || r.out != 12 {
			t.Fatalf("finished=%v %+v, want ErrIdle after 12 bytes out", ok, r)
		}
	})
}

// TestNoIdleTimeout: idle 0 keeps a silent relay open (the caller's choice).
func TestNoIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, _, done := startRelay(t, 0)
		time.Sleep(24 * time.Hour)
		synctest.Wait()
		if _, ok := finished(done); ok {
			t.Fatal("closed without an idle timeout")
		}
		client.Close()
		synctest.Wait()
		if r, ok := finished(done); !ok || errors.Is(r.err, ErrIdle) {
			t.Fatalf("finished=%v %+v after the client closed", ok, r)
		}
	})
}
