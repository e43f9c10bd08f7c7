package listensock

import (
	"context"
	"fmt"
	"net"
	"strings"
	"syscall"
)

// lc leaves accepted sockets alone (KeepAlive -1: Go sets no keep-alive option on them)
// and sets the options on the listening socket before it binds.
var lc = net.ListenConfig{KeepAlive: -1, Control: control}

// Listen opens a listening socket like net.Listen; on a TCP one the keep-alive options
// are set once, for accept to copy to each connection.
func Listen(network, addr string) (net.Listener, error) {
	return lc.Listen(context.Background(), network, addr)
}

// control sets SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT on a TCP socket.
func control(network, addr string, rc syscall.RawConn) error {
	if !strings.HasPrefix(network, "tcp") {
		return nil
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = setKeepAlive(int(fd)) }); err != nil {
		serr = err
	}
	if serr != nil {
		return fmt.Errorf("setting TCP keep-alive on %s: %w", addr, serr)
	}
	return nil
}

func setKeepAlive(fd int) error {
	opts := []struct {
		level, opt, val int
		name            string
	}{
		{syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1, "SO_KEEPALIVE"},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, int(KeepAliveIdle.Seconds()), "TCP_KEEPIDLE"},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, int(KeepAliveInterval.Seconds()), "TCP_KEEPINTVL"},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, KeepAliveCount, "TCP_KEEPCNT"},
	}
	for _, o := range opts {
		if err := syscall.SetsockoptInt(fd, o.level, o.opt, o.val); err != nil {
			return fmt.Errorf("%s: %w", o.name, err)
		}
	}
	return nil
}
