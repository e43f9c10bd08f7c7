package httpproxy

import (
	"syscall"
	"testing"
	"time"

	"tlsgate/internal/rawsock"
)

// TestPoolRawSocket: a dialled TCP backend connection reads and writes with raw
// syscalls (rawsock), and the idle check still reaches its socket through the wrapper:
// idle and silent is alive, a byte no request asked for is not.
func TestPoolRawSocket(t *testing.T) {
	bc, server := dialPooled(t)
	if _, ok := bc.conn.(*rawsock.Conn); !ok {
		t.Fatalf("backend connection is %T, want *rawsock.Conn", bc.conn)
	}
	if !bc.alive() {
		t.Fatal("a silent idle connection is not alive")
	}
	if _, err := server.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	// Wait on the poller until the byte has arrived, reading nothing.
	_ = bc.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var peek [1]byte
	err := bc.conn.(*rawsock.Conn).RawConn().Read(func(fd uintptr) bool {
		return rawsock.PeekFD(fd, &peek) != syscall.EAGAIN
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = bc.conn.SetReadDeadline(time.Time{})
	if bc.alive() {
		t.Fatal("a connection with an unasked-for byte is alive")
	}
}
