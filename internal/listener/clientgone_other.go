//go:build !linux

package listener

// waitHangup is Linux-only (POLLRDHUP); elsewhere an HTTP/1 client's leaving is noticed
// when the response is written.
func (s *sockConn) waitHangup() bool { return false }
