package rawsock

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"reflect"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pair returns a wrapped loopback TCP socket and its plain far end, with small socket
// buffers so that a large write fills them (send answers EAGAIN).
func pair(t *testing.T) (*Conn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	far, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	near, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { near.Close(); far.Close() })
	_ = near.(*net.TCPConn).SetWriteBuffer(16 << 10)
	_ = far.(*net.TCPConn).SetReadBuffer(16 << 10)
	c, ok := Wrap(near).(*Conn)
	if !ok {
		t.Fatal("Wrap did not wrap a TCP socket")
	}
	return c, far.(*net.TCPConn)
}

// within runs f and fails the test when it errs or takes longer than a generous bound
// (a hang is the failure these tests look for; the bound is not a timing check).
func within(t *testing.T, what string, f func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: no end after 30 s", what)
	}
}

// isOp reports whether err is a *net.OpError for op, as net.TCPConn's errors are.
func isOp(err error, op string) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == op && oe.Net == "tcp" && oe.Source != nil && oe.Addr != nil
}

func TestWrapOnlyTCP(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if Wrap(a) != a {
		t.Fatal("Wrap wrapped a pipe")
	}
}

// TestWriteFull: a write larger than what the sockets hold waits for room (the raw
// send's EAGAIN goes to the poller, it is not the end of the write), keeps its write
// deadline (a timeout with the count of bytes taken), and after the wait goes on where
// it stopped: the peer gets every byte once, in order.
func TestWriteFull(t *testing.T) {
	c, far := pair(t)
	data := make([]byte, 16<<20)
	_, _ = rand.Read(data)

	_ = c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	n, err := c.Write(data) // the peer does not read yet
	if !errors.Is(err, os.ErrDeadlineExceeded) || !isOp(err, "write") {
		t.Fatalf("write to a full socket: n=%d err=%v, want a write timeout", n, err)
	}
	if n <= 0 || n >= len(data) {
		t.Fatalf("write to a full socket took %d of %d bytes", n, len(data))
	}

	_ = c.SetWriteDeadline(time.Time{})
	got := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(far); got <- b }()
	within(t, "the rest of the write", func() error {
		m, err := c.Write(data[n:])
		if err == nil && m != len(data)-n {
			err = errors.New("short write without an error")
		}
		if err == nil {
			err = c.CloseWrite()
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

// TestWriteErrors: a reset peer is an error of the write (EPIPE or ECONNRESET, no
// SIGPIPE), and a write after Close is net.ErrClosed, as with net.TCPConn.
func TestWriteErrors(t *testing.T) {
	c, far := pair(t)
	_ = far.SetLinger(0)
	_ = far.Close() // RST
	within(t, "a write to a reset peer fails", func() error {
		chunk := make([]byte, 4096)
		for {
			_, err := c.Write(chunk)
			if err == nil {
				continue
			}
			if !isOp(err, "write") || !(errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)) {
				return err
			}
			return nil
		}
	})
	if n, err := c.Write(nil); n != 0 || err != nil {
		t.Fatalf("empty write: %d, %v", n, err)
	}
	_ = c.Close()
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) || !isOp(err, "write") {
		t.Fatalf("write after Close: %v, want net.ErrClosed", err)
	}
}

// TestWriteConcurrent: Writes from several goroutines at once (net.Conn allows it)
// each arrive whole, none interleaved with another, even when the socket fills
// mid-write; under -race the write's state must not be shared unguarded.
func TestWriteConcurrent(t *testing.T) {
	c, far := pair(t)
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
				if _, err := c.Write(chunk); err != nil {
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
	_ = c.CloseWrite()
	within(t, "the peer reads every write whole", func() error {
		b := <-got
		if len(b) != writers*writes*size {
			return errors.New("the peer got another number of bytes")
		}
		seen := map[byte]bool{}
		for off := 0; off < len(b); off += size {
			ch := b[off : off+size]
			if bytes.Count(ch, ch[:1]) != size || seen[ch[0]] {
				return errors.New("writes were interleaved or repeated")
			}
			seen[ch[0]] = true
		}
		return nil
	})
}

// TestReadEndWithData: data and the peer's FIN that arrive together (sent before the
// read, or while it waits on an empty socket) are read as the data, then io.EOF: the
// read that takes the data must not hide the end, and an empty socket must wait (its
// EAGAIN is not an end and not an error).
func TestReadEndWithData(t *testing.T) {
	for _, early := range []bool{true, false} {
		c, far := pair(t)
		answer := bytes.Repeat([]byte("x"), 100)
		send := func() {
			_, _ = far.Write(answer)
			_ = far.Close()
		}
		if early {
			send()
		}
		got := make(chan []byte, 1)
		errc := make(chan error, 1)
		go func() { b, err := io.ReadAll(c); got <- b; errc <- err }()
		if !early {
			go send()
		}
		within(t, "the answer and its end", func() error {
			b, err := <-got, <-errc
			if err == nil && !bytes.Equal(b, answer) {
				err = errors.New("the answer differs")
			}
			return err
		})
		if n, err := c.Read(make([]byte, 8)); n != 0 || err != io.EOF {
			t.Fatalf("read after the end: %d, %v, want io.EOF", n, err)
		}
	}
}

// TestReadErrors: an empty read returns at once; a read deadline is
// os.ErrDeadlineExceeded, a reset is ECONNRESET, a read after Close is net.ErrClosed,
// each a *net.OpError "read" as net.TCPConn's (not RawConn's "raw-read").
func TestReadErrors(t *testing.T) {
	c, far := pair(t)
	if n, err := c.Read(nil); n != 0 || err != nil {
		t.Fatalf("empty read: %d, %v", n, err)
	}
	buf := make([]byte, 64)
	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := c.Read(buf); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) || !isOp(err, "read") {
		t.Fatalf("read past its deadline: %d, %v", n, err)
	}
	_ = c.SetReadDeadline(time.Time{})
	_ = far.SetLinger(0)
	_ = far.Close() // RST
	within(t, "a read from a reset peer fails", func() error {
		if n, err := c.Read(buf); n != 0 || !errors.Is(err, syscall.ECONNRESET) || !isOp(err, "read") {
			return errors.Join(errors.New("want ECONNRESET"), err)
		}
		return nil
	})
	_ = c.Close()
	if _, err := c.Read(buf); !errors.Is(err, net.ErrClosed) || !isOp(err, "read") {
		t.Fatalf("read after Close: %v, want net.ErrClosed", err)
	}
}

// TestReadConcurrent: Reads from several goroutines at once each get their own bytes;
// together they get every byte once. Under -race the read's state must not be shared
// unguarded.
func TestReadConcurrent(t *testing.T) {
	c, far := pair(t)
	const readers, total = 4, 4 << 20
	data := make([]byte, total)
	_, _ = rand.Read(data)
	go func() { _, _ = far.Write(data); _ = far.CloseWrite() }()
	counts := make(chan int, readers)
	for range readers {
		go func() {
			n, buf := 0, make([]byte, 3000)
			for {
				m, err := c.Read(buf)
				n += m
				if err != nil {
					counts <- n
					return
				}
			}
		}()
	}
	sum := 0
	for range readers {
		within(t, "concurrent reads", func() error { sum += <-counts; return nil })
	}
	if sum != total {
		t.Fatalf("readers got %d bytes of %d", sum, total)
	}
}

// TestCloseWakesRead: a Close from another goroutine ends a Read waiting on an empty
// socket with net.ErrClosed (the raw read's wait is the poller's).
func TestCloseWakesRead(t *testing.T) {
	c, _ := pair(t)
	errc := make(chan error, 1)
	go func() { _, err := c.Read(make([]byte, 8)); errc <- err }()
	time.AfterFunc(20*time.Millisecond, func() { _ = c.Close() })
	within(t, "the waiting read ends", func() error {
		if err := <-errc; !errors.Is(err, net.ErrClosed) || !isOp(err, "read") {
			return errors.Join(errors.New("want net.ErrClosed"), err)
		}
		return nil
	})
}

// TestCopyThroughRaw: io.Copy into and out of a Conn goes through its raw Write and
// Read: ReadFrom and WriteTo are Conn's own, not net.TCPConn's promoted through the
// embedding (whose splice, sendfile or plain Write skip the raw calls), and every byte
// arrives once.
func TestCopyThroughRaw(t *testing.T) {
	for name, f := range map[string]any{"ReadFrom": (*Conn).ReadFrom, "WriteTo": (*Conn).WriteTo} {
		fn := runtime.FuncForPC(reflect.ValueOf(f).Pointer())
		if file, _ := fn.FileLine(fn.Entry()); !strings.HasSuffix(file, "rawsock_linux.go") {
			t.Errorf("(*Conn).%s is declared in %s (promoted from net.TCPConn), want rawsock_linux.go", name, file)
		}
	}
	c, far := pair(t)
	data := make([]byte, 1<<20)
	_, _ = rand.Read(data)
	got := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(far); got <- b }()
	within(t, "io.Copy into the Conn", func() error {
		if _, err := io.Copy(c, bytes.NewReader(data)); err != nil {
			return err
		}
		return c.CloseWrite()
	})
	if !bytes.Equal(<-got, data) {
		t.Fatal("the peer got other bytes than were copied")
	}
	go func() { _, _ = far.Write(data); _ = far.CloseWrite() }()
	var out bytes.Buffer
	within(t, "io.Copy out of the Conn", func() error { _, err := io.Copy(&out, c); return err })
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("io.Copy out of the Conn got other bytes than were sent")
	}
}

// unsent is how many bytes c's socket holds that it has not sent (SIOCOUTQNSD).
func unsent(t *testing.T, c *Conn) int {
	t.Helper()
	var n int
	var ierr error
	if err := c.RawConn().Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQNSD) }); err != nil || ierr != nil {
		t.Fatal(err, ierr)
	}
	return n
}

// TestMoreHeldUntilPush: Writes under SetMore(true) stay in the kernel (less than a
// segment), a Write after SetMore(false) sends them with its own, and Push sends them
// without a Write.
func TestMoreHeldUntilPush(t *testing.T) {
	c, far := pair(t)
	msg := []byte("held until pushed")
	c.SetMore(true)
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	if n := unsent(t, c); n != len(msg) {
		t.Fatalf("after a Write with MSG_MORE: %d bytes unsent, want %d", n, len(msg))
	}
	if err := c.Push(); err != nil {
		t.Fatal(err)
	}
	if n := unsent(t, c); n != 0 {
		t.Fatalf("after Push: %d bytes unsent", n)
	}
	if _, err := c.Write(msg); err != nil { // still under SetMore(true)
		t.Fatal(err)
	}
	c.SetMore(false)
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	if n := unsent(t, c); n != 0 {
		t.Fatalf("after a Write without MSG_MORE: %d bytes unsent", n)
	}
	got := make([]byte, 3*len(msg))
	within(t, "reading", func() error {
		_, err := io.ReadFull(far, got)
		return err
	})
	if want := bytes.Repeat(msg, 3); !bytes.Equal(got, want) {
		t.Fatalf("read %q, want %q", got, want)
	}
}

// TestMoreSendPushesItselfWhenFlagCleared: a send that read the flag on (another
// goroutine's, made while a flush had it on) but reaches the kernel after the flusher's
// SetMore(false) and Push is not left held: it pushes itself. Without that, its bytes
// wait for the next send or the kernel's timer (about 200 ms).
func TestMoreSendPushesItselfWhenFlagCleared(t *testing.T) {
	c, far := pair(t)
	msg := []byte("a KeyUpdate answer")
	c.SetMore(true)
	more := c.more.Load() // the other goroutine's send reads the flag here ...
	c.SetMore(false)      // ... the flusher clears it and pushes what it holds ...
	if err := c.Push(); err != nil {
		t.Fatal(err)
	}
	c.wbuf, c.wn, c.werrno = msg, 0, 0 // ... and then the send reaches the kernel
	var done bool
	if err := c.RawConn().Write(func(fd uintptr) bool { done = c.sendWith(fd, more); return done }); err != nil || !done || c.wn != len(msg) {
		t.Fatalf("send: %v, done %v, %d of %d bytes", err, done, c.wn, len(msg))
	}
	c.wbuf = nil
	if n := unsent(t, c); n != 0 {
		t.Fatalf("a send made with the flag, after it was cleared and pushed: %d bytes unsent", n)
	}
	got := make([]byte, len(msg))
	within(t, "reading", func() error {
		_, err := io.ReadFull(far, got)
		return err
	})
	if !bytes.Equal(got, msg) {
		t.Fatalf("read %q, want %q", got, msg)
	}
	// A send that finds the flag still on leaves the push to the flusher.
	c.SetMore(true)
	c.wbuf, c.wn, c.werrno = msg, 0, 0
	if err := c.RawConn().Write(func(fd uintptr) bool { return c.sendWith(fd, c.more.Load()) }); err != nil {
		t.Fatal(err)
	}
	c.wbuf = nil
	if n := unsent(t, c); n != len(msg) {
		t.Fatalf("a send under the flag still on: %d bytes unsent, want %d (held for the flusher)", n, len(msg))
	}
	c.SetMore(false)
	if err := c.Push(); err != nil {
		t.Fatal(err)
	}
}
