package tcpproxy

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// writeEnds returns a wrapped Socket and the plain far end, with small socket buffers
// so that a large write fills them (send answers EAGAIN).
func writeEnds(t *testing.T) (*Socket, *net.TCPConn) {
	t.Helper()
	near, far := sockPair(t)
	_ = near.(*net.TCPConn).SetWriteBuffer(16 << 10)
	_ = far.(*net.TCPConn).SetReadBuffer(16 << 10)
	s, ok := WrapSocket(near).(*Socket)
	if !ok {
		t.Fatal("WrapSocket did not wrap a TCP socket")
	}
	return s, far.(*net.TCPConn)
}

// TestSocketWriteFull: a write larger than what the sockets hold waits for room (the
// raw send's EAGAIN goes to the poller, it is not an error), keeps its write deadline
// (a timeout with the count of bytes taken), and after the wait goes on where it
// stopped: the peer gets every byte once, in order.
func TestSocketWriteFull(t *testing.T) {
	s, far := writeEnds(t)
	data := make([]byte, 16<<20)
	_, _ = rand.Read(data)

	_ = s.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	n, err := s.Write(data) // the peer does not read yet
	var oe *net.OpError
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &oe) || oe.Op != "write" {
		t.Fatalf("write to a full socket: n=%d err=%v, want a write timeout", n, err)
	}
	if n <= 0 || n >= len(data) {
		t.Fatalf("write to a full socket took %d of %d bytes", n, len(data))
	}

	_ = s.SetWriteDeadline(time.Time{})
	got := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(far); got <- b }()
	within(t, "the rest of the write", func() error {
		m, err := s.Write(data[n:])
		if err == nil && m != len(data)-n {
			err = errors.New("short write without an error")
		}
		if err == nil {
			err = s.CloseWrite()
		}
		return err
	})
	within(t, "the peer reads it all", func() error {
		if !bytes.Equal(<-got, data) {
			return errors.New("the peer got other bytes than were written")
		}
		return nil
	})
}

// TestSocketWriteErrors: a reset peer is an error of the write (EPIPE or ECONNRESET,
// no SIGPIPE), and a write after Close is net.ErrClosed, as with net.TCPConn.
func TestSocketWriteErrors(t *testing.T) {
	s, far := writeEnds(t)
	_ = far.SetLinger(0)
	_ = far.Close() // RST
	within(t, "a write to a reset peer fails", func() error {
		chunk := make([]byte, 4096)
		for {
			_, err := s.Write(chunk)
			if err == nil {
				continue
			}
			var oe *net.OpError
			if !errors.As(err, &oe) || oe.Op != "write" || !(errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)) {
				return err
			}
			return nil
		}
	})
	if n, err := s.Write(nil); n != 0 || err != nil {
		t.Fatalf("empty write: %d, %v", n, err)
	}
	_ = s.Close()
	if _, err := s.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v, want net.ErrClosed", err)
	}
}

// TestSocketWriteConcurrent: Writes from several goroutines at once (net.Conn allows
// it) each arrive whole, none interleaved with another, even when the socket fills
// mid-write; under -race the write's state must not be shared unguarded.
func TestSocketWriteConcurrent(t *testing.T) {
	s, far := writeEnds(t)
	const writers, writes, size = 4, 32, 64 << 10
	got := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(far); got <- b }()
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			chunk := make([]byte, size)
			for i := range writes {
				for j := range chunk {
					chunk[j] = byte(w*writes + i)
				}
				if _, err := s.Write(chunk); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		within(t, "concurrent writes", func() error { return <-errs })
	}
	_ = s.CloseWrite()
	within(t, "the peer reads every write whole", func() error {
		b := <-got
		if len(b) != writers*writes*size {
			return errors.New("the peer got another number of bytes")
		}
		seen := map[byte]bool{}
		for off := 0; off < len(b); off += size {
			c := b[off : off+size]
			if bytes.Count(c, c[:1]) != size || seen[c[0]] {
				return errors.New("writes were interleaved or repeated")
			}
			seen[c[0]] = true
		}
		return nil
	})
}
