//go:build !linux

package tcpproxy

import (
	"io"
	"net"
)

// Socket is, off Linux, never made: the relay reads through Go's poller (copyAdaptive).
type Socket struct{ net.Conn }

// WrapSocket returns c as it is: reading a socket directly needs Linux's TCP_INQ.
func WrapSocket(c net.Conn) net.Conn { return c }

func asSocket(net.Conn) *Socket { return nil }

func (s *Socket) askInq() bool { return false }

func (s *Socket) readDirect(func() bool) error { return nil }

func socketOf(net.Conn) *Socket { return nil }

func sendSocket(io.Writer) *Socket { return nil }

func (s *Socket) queued() bool { return false }

func (s *Socket) SetMore(bool) {}

func (s *Socket) Push() error { return nil }
