package listener

import "time"

// track registers a connection for drain; false when the listener is shutting down.
func (l *Listener) track(h *h1conn) bool {
	l.h1mu.Lock()
	defer l.h1mu.Unlock()
	if l.h1draining {
		if l.h1forced {
			return false
		}
		h.state.Store(h1Last) // handshaken during the drain: one request, soon
		_ = h.c.SetReadDeadline(time.Now().Add(freshGrace))
	}
	l.h1conns[h] = struct{}{}
	return true
}

func (l *Listener) untrack(h *h1conn) {
	l.h1mu.Lock()
	delete(l.h1conns, h)
	l.h1mu.Unlock()
}

// drainH1 closes idle HTTP/1 connections (active ones close after their response) and
// refuses new ones; with force it closes every one.
func (l *Listener) drainH1(force bool) {
	l.h1mu.Lock()
	defer l.h1mu.Unlock()
	l.h1draining = true
	l.h1forced = l.h1forced || force
	for h := range l.h1conns {
		if force {
			h.state.Store(h1Closing)
			_ = h.c.Close()
			continue
		}
		drainConn(h)
	}
}

// drainConn moves one connection to its draining state: idle ones are closed now,
// active ones after their response, fresh ones after one request.
func drainConn(h *h1conn) {
	for {
		switch s := h.state.Load(); s {
		case h1Idle:
			if h.state.CompareAndSwap(s, h1Closing) {
				_ = h.c.SetReadDeadline(time.Now())
				return
			}
		case h1Fresh:
			if h.state.CompareAndSwap(s, h1Last) {
				// A request sent with the handshake comes at once; a connection a
				// client keeps unused in its pool must not hold the drain.
				_ = h.c.SetReadDeadline(time.Now().Add(freshGrace))
				return
			}
		case h1Active:
			if h.state.CompareAndSwap(s, h1Closing) {
				return
			}
		default: // closing already, or one last request
			return
		}
	}
}
