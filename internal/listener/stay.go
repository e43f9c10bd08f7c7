package listener

import (
	"bufio"
	"time"
)

// A kept-alive connection's next request usually comes soon when its client is busy.
// Handing each one from the connection's goroutine to a worker and back costs a
// channel send, two goroutine switches and a select per request; so the worker that
// served a request waits for the next one itself, for stayWindow, before it hands the
// connection back to the small goroutine for the long idle wait. At most maxStaying
// workers wait so (each with the stack a request grew and a 4 KiB reader), so idle
// connections still cost what they did: a burst of many connections making one request
// each finds the cap, and every worker leaves within stayWindow.

const (
	stayWindow = time.Second
	maxStaying = 64
)

// stay serves h's requests on this worker while each comes within stayWindow of the
// last; h1Again when none came (h.stayed: the idle wait is shorter by the window).
func (l *Listener) stay(h *h1conn, br *bufio.Reader, info *connInfo) h1End {
	sock := socketOf(h.c)
	idle := info.state.IdleTimeout
	if sock == nil || (idle > 0 && idle < 2*stayWindow) {
		return h1Again
	}
	if l.staying.Add(1) > maxStaying {
		l.staying.Add(-1)
		return h1Again
	}
	defer l.staying.Add(-1)
	for {
		sock.readTimeout(stayWindow) // lazily: mostly no timer is touched
		if h.state.Load() == h1Closing {
			return h1Close // drained between the response and the deadline, which undid its wake-up
		}
		if !sock.readable() {
			if h.state.Load() == h1Closing {
				return h1Close
			}
			h.stayed = true
			return h1Again // the window passed (or the socket failed: the idle wait will see it)
		}
		end := readFirst(h)
		switch {
		case end == h1NotReady:
			continue
		case end != h1Again:
			return end
		}
		if end = l.serveBuffered(h, br, info); end != h1Again {
			return end
		}
	}
}
