package httpproxy

import (
	"io"
	"strings"
	"testing"
	"time"

	"tlsgate/internal/rawsock"
)

// TestHeldSendNoRoom: a held request that finds its socket full (a backend not reading)
// is not lost: what SendRead could not send goes as an ordinary write, then the answer
// is read; the backend gets every byte once.
func TestHeldSendNoRoom(t *testing.T) {
	bc, server := dialPooled(t)
	if bc.sock == nil {
		t.Fatal("a plain backend connection has no held socket")
	}
	filled := 0
	fill := make([]byte, 64<<10)
	err := bc.sock.c.RawConn().Write(func(fd uintptr) bool {
		for {
			n, errno := rawsock.SendFD(fd, fill)
			if errno != 0 {
				return true
			}
			filled += n
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	req := make([]byte, 3<<10)
	_, _ = bc.bw.Write(req)
	bc.holdNext()
	if err := bc.bw.Flush(); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		if _, err := io.ReadFull(server, make([]byte, filled+len(req))); err != nil {
			got <- err
			return
		}
		_, err := server.Write([]byte("answer"))
		got <- err
	}()
	_ = bc.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	b, err := bc.br.Peek(6)
	if err != nil || string(b) != "answer" {
		t.Fatalf("read %q, %v; want the answer", b, err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

// TestHeldWriteTo: a held request is sent whichever way the connection's reader is
// drained, bufio.Reader.WriteTo included: the held socket has no WriteTo of its own
// for bufio to take instead of its Read (an embedded socket's, promoted, read without
// sending what was held, and the backend waited for a request that never came).
func TestHeldWriteTo(t *testing.T) {
	bc, server := dialPooled(t)
	go func() {
		if _, err := io.ReadFull(server, make([]byte, 4)); err == nil {
			_, _ = server.Write([]byte("answer"))
		}
		_ = server.Close()
	}()
	_, _ = bc.bw.WriteString("ping")
	bc.holdNext()
	if err := bc.bw.Flush(); err != nil {
		t.Fatal(err)
	}
	_ = bc.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var out strings.Builder
	if _, err := bc.br.WriteTo(&out); err != nil || out.String() != "answer" {
		t.Fatalf("WriteTo: %q, %v; want the answer to the held request", out.String(), err)
	}
}
