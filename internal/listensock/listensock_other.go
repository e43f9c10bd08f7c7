//go:build !linux

package listensock

import "net"

// Listen is net.Listen: Go sets keep-alive on each accepted connection (whether accept
// copies a listening socket's options differs between systems).
func Listen(network, addr string) (net.Listener, error) {
	return net.Listen(network, addr)
}
