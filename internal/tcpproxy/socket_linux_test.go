package tcpproxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
)

// sockPair returns the two ends of a loopback TCP connection.
func sockPair(t testing.TB) (near, far net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	far, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	near, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { near.Close(); far.Close() })
	return near, far
}

// directRelay is a relay as the listener runs one: the client's socket wrapped before
// the TLS handshake (or used plain), a plain TCP backend. It returns the client's and
// the backend's far ends, and a start function that runs Copy.
func directRelay(t testing.TB, useTLS bool, idle time.Duration) (client, backend net.Conn, start func() <-chan relayResult) {
	t.Helper()
	cNear, cFar := sockPair(t)
	bNear, bFar := sockPair(t)
	var front net.Conn = WrapSocket(cNear)
	if _, ok := front.(*Socket); !ok {
		t.Fatalf("WrapSocket(%T) = %T, want *Socket", cNear, front)
	}
	client = cFar
	if useTLS {
		ca := pkitest.New(t, "relay ca", pki.ECDSAP256)
		leaf := ca.Issue("relay.test", pkitest.Server("relay.test"))
		srv := tls.Server(front, &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}})
		cli := tls.Client(cFar, &tls.Config{RootCAs: ca.Pool(), ServerName: "relay.test"})
		errc := make(chan error, 1)
		go func() { errc <- srv.Handshake() }()
		if err := cli.Handshake(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		front, client = srv, cli
	}
	start = func() <-chan relayResult {
		ch := make(chan relayResult, 1)
		go func() {
			in, out, err := Copy(context.Background(), front, bNear, idle)
			ch <- relayResult{in, out, err}
		}()
		return ch
	}
	return client, bFar, start
}

func eachMode(t *testing.T, f func(t *testing.T, useTLS bool)) {
	for _, m := range []struct {
		name string
		tls  bool
	}{{"tcp", false}, {"tcp_ssl", true}} {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			f(t, m.tls)
		})
	}
}

// within fails the test when f has not returned after a generous time: a relay that
// waits for data already there hangs, it is not slow.
func within(t *testing.T, what string, f func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: still waiting after 20 s (the relay missed data or an end)", what)
	}
}

// TestDirectRoundTrips: each small message goes through at once both ways, without
// waiting for more (interactive traffic), many times over one relay.
func TestDirectRoundTrips(t *testing.T) {
	eachMode(t, func(t *testing.T, useTLS bool) {
		client, backend, start := directRelay(t, useTLS, time.Minute)
		done := start()
		go func() { _, _ = io.Copy(backend, backend); backend.Close() }() // echo
		within(t, "200 round trips", func() error {
			buf := make([]byte, 64)
			for i := range 200 {
				msg := bytes.Repeat([]byte{byte(i)}, 1+i%60)
				if _, err := client.Write(msg); err != nil {
					return err
				}
				if _, err := io.ReadFull(client, buf[:len(msg)]); err != nil {
					return err
				}
				if !bytes.Equal(buf[:len(msg)], msg) {
					return errors.New("echo differs")
				}
			}
			return nil
		})
		client.Close()
		within(t, "relay end", func() error { r := <-done; return r.err })
	})
}

// TestDirectEndWithData: a backend that answers and closes at once, before the relay
// reads, delivers its answer and its end together; a read that returns the data has
// also consumed the FIN, so the relay must not wait for another edge (no idle timeout
// here: a wait would hang for ever). Both directions, and with the relay already
// waiting when the data and the end come.
func TestDirectEndWithData(t *testing.T) {
	eachMode(t, func(t *testing.T, useTLS bool) {
		for _, early := range []bool{true, false} {
			client, backend, start := directRelay(t, useTLS, 0)
			answer := bytes.Repeat([]byte("x"), 100)
			send := func() {
				_, _ = backend.Write(answer)
				_ = backend.Close()
			}
			if early {
				send()
			}
			done := start()
			if !early {
				go send()
			}
			within(t, "answer and EOF", func() error {
				got, err := io.ReadAll(client)
				if err == nil && !bytes.Equal(got, answer) {
					err = errors.New("answer differs")
				}
				return err
			})
			client.Close()
			within(t, "relay end", func() error { r := <-done; return r.err })
		}
	})
}

// TestDirectHalfClose: the client sends a request and closes its write side; the
// backend reads it to the end, answers and closes; the client gets the whole answer.
func TestDirectHalfClose(t *testing.T) {
	eachMode(t, func(t *testing.T, useTLS bool) {
		client, backend, start := directRelay(t, useTLS, time.Minute)
		done := start()
		req := []byte("request")
		if _, err := client.Write(req); err != nil {
			t.Fatal(err)
		}
		if err := client.(closeWriter).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		within(t, "backend reads the request and its end", func() error {
			got, err := io.ReadAll(backend)
			if err == nil && !bytes.Equal(got, req) {
				err = errors.New("request differs")
			}
			return err
		})
		if _, err := backend.Write([]byte("answer")); err != nil {
			t.Fatal(err)
		}
		backend.Close()
		within(t, "client reads the answer", func() error {
			got, err := io.ReadAll(client)
			if err == nil && string(got) != "answer" {
				err = errors.New("answer differs")
			}
			return err
		})
		within(t, "relay end", func() error {
			r := <-done
			if r.err == nil && (r.in != int64(len(req)) || r.out != 6) {
				return errors.New("byte counts differ")
			}
			return r.err
		})
	})
}

// TestDirectBulk: 8 MiB each way at once arrive whole and in order (the buffers grow
// and several TLS records are gathered into one write).
func TestDirectBulk(t *testing.T) {
	eachMode(t, func(t *testing.T, useTLS bool) {
		client, backend, start := directRelay(t, useTLS, time.Minute)
		done := start()
		up, down := make([]byte, 8<<20), make([]byte, 8<<20)
		_, _ = rand.Read(up)
		_, _ = rand.Read(down)
		stream := func(w net.Conn, data []byte) error {
			if _, err := w.Write(data); err != nil {
				return err
			}
			return w.(closeWriter).CloseWrite()
		}
		expect := func(r net.Conn, want []byte) error {
			got, err := io.ReadAll(r)
			if err == nil && !bytes.Equal(got, want) {
				err = errors.New("data differs")
			}
			return err
		}
		errs := make(chan error, 4)
		go func() { errs <- stream(client, up) }()
		go func() { errs <- stream(backend, down) }()
		go func() { errs <- expect(backend, up) }()
		go func() { errs <- expect(client, down) }()
		for range 4 {
			within(t, "bulk", func() error { return <-errs })
		}
		within(t, "relay end", func() error { r := <-done; return r.err })
	})
}

// TestDirectIdle: the idle timeout closes a silent relay that reads its sockets
// directly, as it does one that reads through Go's poller.
func TestDirectIdle(t *testing.T) {
	eachMode(t, func(t *testing.T, useTLS bool) {
		_, backend, start := directRelay(t, useTLS, 100*time.Millisecond)
		done := start()
		within(t, "idle close", func() error {
			r := <-done
			if !errors.Is(r.err, ErrIdle) {
				return r.err
			}
			_, err := backend.Read(make([]byte, 1))
			if err != io.EOF {
				return errors.New("backend still open")
			}
			return nil
		})
	})
}

// scripted is a source that answers its reads in turn: data (filling the buffer), then
// errNotReady.
type scripted struct{ data []byte }

func (s *scripted) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, errNotReady
	}
	n := copy(p, s.data)
	s.data = s.data[n:]
	return n, nil
}

// TestHeldSentBeforeWait: a flush sent with MSG_MORE (its buffer full, its source's
// socket not empty), then a read that ends in the wait without data (TLS took the
// socket's rest into a record it cannot finish yet): what the flush sent must leave
// before the relay waits. The kernel would keep it (less than a segment) for a next
// send that the peer, waiting for those bytes, may never cause, or for up to 200 ms
// (then it sends anyway): so the test asks the socket, as the relay waits, how many
// bytes it has not sent (SIOCOUTQNSD).
func TestHeldSentBeforeWait(t *testing.T) {
	srcNear, _ := sockPair(t)
	outNear, outFar := sockPair(t)
	src, out := newSocket(srcNear.(*net.TCPConn)), newSocket(outNear.(*net.TCPConn))
	want := make([]byte, bigBuf)
	rand.Read(want)
	c := &copier{dst: out, src: &scripted{data: want}, sock: src, out: out, touch: func() {}, useBig: true}
	if !src.queued() {
		t.Fatal("a fresh Socket reads as empty: the flush would not hold its bytes")
	}
	if c.step() {
		t.Fatalf("step ended the copy (%v), want a wait", c.err)
	}
	c.release()
	var unsent int
	var ierr error
	if err := out.rc.Control(func(fd uintptr) { unsent, ierr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQNSD) }); err != nil || ierr != nil {
		t.Fatal(err, ierr)
	}
	if unsent != 0 {
		t.Errorf("the relay waits with %d bytes unsent in the socket it wrote", unsent)
	}
	got := make([]byte, len(want))
	within(t, "reading the flushed bytes", func() error {
		if _, err := io.ReadFull(outFar, got); err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			return errors.New("other bytes than sent")
		}
		return nil
	})
}
