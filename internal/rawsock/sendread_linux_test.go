package rawsock

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// waitReadable waits on the poller until c's socket has data or an end, reading
// nothing: the edge that told of it is spent, as when a peer's close came while the
// connection sat idle and Go's netpoll took the event.
func waitReadable(t *testing.T, c *Conn) {
	t.Helper()
	var b [1]byte
	within(t, "the socket becomes readable", func() error {
		return c.RawConn().Read(func(fd uintptr) bool { return PeekFD(fd, &b) != syscall.EAGAIN })
	})
}

// TestSendReadAnswers: SendRead's read waits for the answer without trying first, and
// no answer is missed: a peer that answers each request at once (before, during or
// after the wait begins) gets 2000 round trips through, each answer read whole.
func TestSendReadAnswers(t *testing.T) {
	c, far := pair(t)
	go func() {
		br := bufio.NewReader(far)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if _, err := far.Write([]byte("re:" + line)); err != nil {
				return
			}
		}
	}()
	within(t, "2000 round trips", func() error {
		buf := make([]byte, 64)
		for i := range 2000 {
			req := []byte("ping " + string(rune('a'+i%26)) + "\n")
			sent, n, err := c.SendRead(req, buf)
			if err != nil || sent != len(req) {
				return errors.Join(errors.New("round trip failed"), err)
			}
			want := "re:" + string(req)
			for n < len(want) { // the answer may come in pieces
				m, err := c.Read(buf[n:])
				if err != nil {
					return err
				}
				n += m
			}
			if string(buf[:n]) != want {
				return errors.New("answer " + string(buf[:n]) + ", want " + want)
			}
		}
		return nil
	})
}

// TestSendReadPeerClosedIdle: a peer that closed the connection while it sat idle,
// the close's edge spent before SendRead, does not leave SendRead waiting: the send
// draws a reset (a new edge), and the read ends with ECONNRESET or EOF. A peer that
// reset the connection fails the send itself ("write", EPIPE or ECONNRESET).
func TestSendReadPeerClosedIdle(t *testing.T) {
	for _, reset := range []bool{false, true} {
		c, far := pair(t)
		if reset {
			_ = far.SetLinger(0)
		}
		_ = far.Close()
		waitReadable(t, c)
		_ = c.SetReadDeadline(time.Now().Add(time.Minute)) // beyond within's bound
		within(t, "SendRead to a closed peer ends", func() error {
			sent, n, err := c.SendRead([]byte("GET / HTTP/1.1\r\n\r\n"), make([]byte, 64))
			switch {
			case n != 0:
				return errors.New("read something from a closed peer")
			case reset && isOp(err, "write") && (errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)):
				return nil
			case !reset && sent > 0 && (err == io.EOF || isOp(err, "read") && errors.Is(err, syscall.ECONNRESET)):
				return nil
			}
			return errors.Join(errors.New("want a reset or EOF"), err)
		})
	}
}

// TestSendReadDeadline: the read deadline bounds SendRead's wait (the request sent),
// and a deadline set while it waits (the proxy's cancel when the client leaves) ends
// it at once; a deadline already past sends nothing; Close ends the wait with
// net.ErrClosed.
func TestSendReadDeadline(t *testing.T) {
	req := []byte("GET / HTTP/1.1\r\n\r\n")
	c, far := pair(t)
	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	within(t, "the deadline ends the wait", func() error {
		sent, _, err := c.SendRead(req, make([]byte, 64))
		if sent != len(req) || !errors.Is(err, os.ErrDeadlineExceeded) || !isOp(err, "read") {
			return errors.Join(errors.New("want the request sent and a read timeout"), err)
		}
		return nil
	})
	if _, err := io.ReadFull(far, make([]byte, len(req))); err != nil {
		t.Fatal(err)
	}

	// Set while waiting: the peer has read the request, so SendRead is past its send.
	c, far = pair(t)
	_ = c.SetReadDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() { _, _, err := c.SendRead(req, make([]byte, 64)); errc <- err }()
	if _, err := io.ReadFull(far, make([]byte, len(req))); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now())
	within(t, "a deadline set during the wait ends it", func() error {
		if err := <-errc; !errors.Is(err, os.ErrDeadlineExceeded) {
			return errors.Join(errors.New("want a timeout"), err)
		}
		return nil
	})
	sent, _, err := c.SendRead(req, make([]byte, 64))
	if sent != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("SendRead past the deadline: sent %d, %v; want 0 and a timeout", sent, err)
	}

	c, far = pair(t)
	go func() { _, _, err := c.SendRead(req, make([]byte, 64)); errc <- err }()
	if _, err := io.ReadFull(far, make([]byte, len(req))); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	within(t, "Close ends the wait", func() error {
		if err := <-errc; !errors.Is(err, net.ErrClosed) {
			return errors.Join(errors.New("want net.ErrClosed"), err)
		}
		return nil
	})
}

// TestSendReadNoRoom: a socket without room for the whole request sends what fits and
// returns without reading or waiting (sent < len, no error); the caller sends the rest
// and reads as usual, and the peer gets every byte once.
func TestSendReadNoRoom(t *testing.T) {
	c, far := pair(t)
	// Fill the socket: the peer does not read yet.
	fill := make([]byte, 64<<10)
	var filled int
	err := c.RawConn().Write(func(fd uintptr) bool {
		for {
			n, errno := SendFD(fd, fill)
			if errno != 0 {
				return true
			}
			filled += n
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	req := make([]byte, 32<<10)
	for i := range req {
		req[i] = 'r'
	}
	sent, n, err := c.SendRead(req, make([]byte, 64))
	if sent >= len(req) || n != 0 || err != nil {
		t.Fatalf("SendRead on a full socket: sent %d of %d, read %d, %v; want a part, nothing read, no error", sent, len(req), n, err)
	}
	got := make(chan int, 1)
	go func() { b, _ := io.ReadAll(far); got <- len(b) }()
	within(t, "the rest goes as a write", func() error {
		if _, err := c.Write(req[sent:]); err != nil {
			return err
		}
		return c.CloseWrite()
	})
	if total := <-got; total != filled+len(req) {
		t.Fatalf("the peer got %d bytes, want %d", total, filled+len(req))
	}
}
