// Package rawsock reads and writes non-blocking TCP sockets with raw syscalls
// (syscall.RawSyscall: no entersyscall/exitsyscall around them), for the keep-alive
// paths where the server's CPU per request is what counts.
//
// Why: the socket is non-blocking, so read(2) and send(2) never wait, yet Go's ordinary
// syscall path marks the P as in a syscall. With the server on one core (GOMAXPROCS=1)
// each such call after an idle spell wakes Go's sysmon thread from its deep sleep and
// sets it polling every 20 µs, and a write it catches in progress twice loses the P to
// another thread: futex wake-ups, nanosleep and context switches that do no work
// (bench/README.md, "tcp2" and "raw"). With raw calls sysmon sleeps and one thread does
// the work.
//
// Only the syscalls change: every raw call runs inside the socket's RawConn.Read or
// RawConn.Write, so the descriptor's locks against a concurrent Close, the deadlines
// and the wait on Go's poller when the socket is empty or full stay Go's, and errors
// read as net.TCPConn's. The package imports nothing of tlsgate's: listener, httpproxy
// and tcpproxy (whose relay-specific Socket adds its recvmsg reads) build on it.
package rawsock

import "net"

// Wrap returns c as a *Conn when it is a plain TCP socket, else c as it is (a TLS
// connection, a PROXY header reader holding bytes the socket no longer shows, a pipe).
func Wrap(c net.Conn) net.Conn {
	tcp, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	r := new(Conn)
	if !r.Init(tcp) {
		return c
	}
	return r
}
