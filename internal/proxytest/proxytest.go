// Package proxytest holds test-only helpers for loopback proxy tests: echo backends,
// a log sink to wait for JSON log lines without sleeping. Only _test.go files import it.
package proxytest

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"tlsgate/internal/demo"
)

// Backend starts an HTTP echo (JSON of the request's headers) and a TCP echo server on
// loopback, closed when the test ends.
func Backend(tb testing.TB) *demo.Backend {
	tb.Helper()
	b, err := demo.StartBackend()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = b.Close() })
	return b
}

// Raw accepts TCP connections on loopback and hands each to serve on its own
// goroutine (the connection is closed after it); for backends that must misbehave in
// ways an http.Server will not. It returns the address; the listener closes when the
// test ends.
func Raw(tb testing.TB, serve func(c net.Conn)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	tb.Cleanup(func() { _ = ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); serve(c) }()
		}
	}()
	return ln.Addr().String()
}

// Sink collects JSON log lines and lets a test wait for one.
type Sink struct {
	mu     sync.Mutex
	lines  []map[string]any
	next   int
	notify chan struct{}
}

// NewSink returns an empty sink.
func NewSink() *Sink { return &Sink{notify: make(chan struct{}, 1)} }

// Logger is a JSON logger writing into the sink.
func (s *Sink) Logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(s, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Write takes one JSON line per call (slog's JSON handler writes a record at once).
func (s *Sink) Write(p []byte) (int, error) {
	var m map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(p), &m); err != nil {
		return 0, err
	}
	s.mu.Lock()
	s.lines = append(s.lines, m)
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return len(p), nil
}

// Next waits (up to 10s, then fails the test) for the first line after the previously
// returned one that has every key/value of want, and returns it.
func (s *Sink) Next(tb testing.TB, want map[string]any) map[string]any {
	tb.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		for i := s.next; i < len(s.lines); i++ {
			if matches(s.lines[i], want) {
				s.next = i + 1
				l := s.lines[i]
				s.mu.Unlock()
				return l
			}
		}
		s.mu.Unlock()
		select {
		case <-s.notify:
		case <-deadline.C:
			s.mu.Lock()
			defer s.mu.Unlock()
			tb.Fatalf("no log line with %v; lines since last match:\n%v", want, s.lines[s.next:])
			return nil
		}
	}
}

// Count is how many lines so far have every key/value of want.
func (s *Sink) Count(want map[string]any) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.lines {
		if matches(l, want) {
			n++
		}
	}
	return n
}

func matches(line, want map[string]any) bool {
	for k, v := range want {
		if line[k] != v {
			return false
		}
	}
	return true
}
