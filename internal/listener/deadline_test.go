package listener

import (
	"errors"
	"os"
	"testing"
	"time"
)

// TestLazyDeadlineClocks: the lazy setters compare their monotonic readings with
// deadlines set through SetReadDeadline (any time.Time): an armed deadline later than
// the new one is replaced, one in the past without a monotonic reading is replaced, and
// a new one within the slack of the armed one leaves it standing.
func TestLazyDeadlineClocks(t *testing.T) {
	t.Parallel()
	s, client := pair(t)
	buf := make([]byte, 8)

	_ = s.SetReadDeadline(time.Now().Add(time.Hour))
	s.readTimeout(50 * time.Millisecond)
	done := make(chan error, 1)
	go func() { _, err := s.Read(buf); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read under a 50 ms timeout after an hour's deadline: %v, want the deadline exceeded", err)
		}
	case <-time.After(30 * time.Second): // generous: the timeout is 50 ms
		_ = s.Close()
		t.Fatal("the 50 ms timeout did not fire: the hour's deadline stood")
	}

	_ = s.SetReadDeadline(time.Unix(1, 0)) // in the past, no monotonic reading
	s.readTimeout(time.Minute)
	// A deadline still in the past fails a read at once, data waiting or not.
	if _, err := client.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Read(buf); err != nil || n != 1 {
		t.Fatalf("read under a minute's timeout after a deadline in the past: %d, %v", n, err)
	}

	s.readTimeout(time.Minute)
	armed := s.rdl
	s.readTimeout(time.Minute) // moments later: within the slack (250 ms)
	if s.rdl != armed {
		t.Fatalf("the deadline was re-armed (%d -> %d): within the slack it stands", armed, s.rdl)
	}
	s.writeTimeout(time.Minute)
	armed = s.wdl
	s.writeTimeout(time.Minute)
	if s.wdl != armed || armed == 0 {
		t.Fatalf("the write deadline was re-armed (%d -> %d) or never armed", armed, s.wdl)
	}
}
