// Package listensock opens the listening sockets. On Linux the client sockets' TCP
// keep-alive (on, probes after 15 s idle, every 15 s, 9 unanswered close: Go's defaults,
// which tlsgate always used) is set once on the listening socket, and accept(2) copies it
// to every connection, instead of Go's net package setting it with four setsockopt(2)
// calls on each accepted socket (a full handshake makes about 23 syscalls, so that was a
// sixth of them). Elsewhere it is net.Listen, Go's per-connection defaults.
//
// A socket inherited from the previous binary (internal/upgrade) keeps Go's
// per-connection path: net.FileListener gives it the zero ListenConfig, so Go sets the
// same four options on each connection it accepts.
//
// It owns socket options only: which address to open, and handing sockets to a new
// binary, belong to internal/upgrade and internal/server.
package listensock

import "time"

// The client sockets' TCP keep-alive: Go's net package defaults (net.KeepAliveConfig
// with zero fields), which every accepted connection had before this package.
const (
	KeepAliveIdle     = 15 * time.Second // TCP_KEEPIDLE
	KeepAliveInterval = 15 * time.Second // TCP_KEEPINTVL
	KeepAliveCount    = 9                // TCP_KEEPCNT
)
