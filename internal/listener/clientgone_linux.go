package listener

import "golang.org/x/sys/unix"

// pollRDHUP is Linux's POLLRDHUP (the peer shut down its writing side), which
// golang.org/x/sys/unix names only for epoll.
const pollRDHUP = 0x2000

// waitHangup blocks until the peer closes its side of the socket (FIN or RST) and
// reports true, or until the read deadline passes (false). It reads nothing, so bytes
// of a pipelined request or a TLS close_notify stay unread: only the hangup counts.
// Go's poller is edge-triggered and registers for EPOLLRDHUP, so a FIN after data
// wakes the wait again.
func (s *sockConn) waitHangup() bool {
	hup := false
	err := s.rc.Read(func(fd uintptr) bool {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | pollRDHUP}}
		for {
			n, err := unix.Poll(fds, 0)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return true
			}
			hup = n > 0 && fds[0].Revents&(pollRDHUP|unix.POLLHUP|unix.POLLERR) != 0
			return hup // else wait for the next event on the socket
		}
	})
	return hup && err == nil
}
