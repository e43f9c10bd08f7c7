package server

import (
	"tlsgate/internal/status"
)

// Status is the runtime view of the running configuration with what the listeners
// saw: GET /api/v1/status and the admin console.
func (s *Server) Status() *status.View {
	s.mu.Lock()
	rt := status.Runtime{Config: s.cfg, Store: s.store, Groups: s.groups, Addrs: map[string]string{}}
	for id, l := range s.listeners {
		rt.Addrs[id] = l.Addr().String()
	}
	s.mu.Unlock()
	return s.history.View(rt)
}

// History is the recorder the listeners feed; the console adds the denylist's notes
// to it.
func (s *Server) History() *status.Recorder { return s.history }
