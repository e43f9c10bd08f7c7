package upgrade

import (
	"net"
	"slices"
	"testing"
)

func TestInheritNothing(t *testing.T) {
	t.Setenv(EnvFDs, "")
	t.Setenv(EnvReady, "")
	s, err := Inherit()
	if err != nil || s.Upgrading() {
		t.Fatalf("Inherit without variables: %v, upgrading %v", err, s.Upgrading())
	}
	if s.Ready() != nil {
		t.Fatal("Ready without a parent")
	}
	t.Setenv(EnvReady, "x")
	if _, err := Inherit(); err == nil {
		t.Fatal("a ready fd that is not a number was taken")
	}
}

// TestListenTracksOpenSockets: the sockets passed on are those open now, by the
// address they were asked for; one a reload closed is not passed on.
func TestListenTracksOpenSockets(t *testing.T) {
	s := &Sockets{inherited: map[string][]net.Listener{}}
	a, err := s.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	files, names, err := s.files()
	if err != nil || len(files) != 2 || names != "127.0.0.1:0;127.0.0.1:0" {
		t.Fatalf("files %d, names %q, %v", len(files), names, err)
	}
	closeAll(files)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	files, _, _ = s.files()
	closeAll(files)
	if len(files) != 1 {
		t.Fatalf("%d sockets passed on after one closed, want 1", len(files))
	}
	b.Close()
}

// TestListenTakesInherited: a listener asks for its address and gets the inherited
// socket, in order for several on one address; others bind anew; unclaimed ones close.
func TestListenTakesInherited(t *testing.T) {
	l1, _ := net.Listen("tcp", "127.0.0.1:0")
	l2, _ := net.Listen("tcp", "127.0.0.1:0")
	l3, _ := net.Listen("tcp", "127.0.0.1:0")
	s := &Sockets{inherited: map[string][]net.Listener{"127.0.0.1:0": {l1, l2}, "127.0.0.1:9": {l3}}}
	got1, _ := s.Listen("tcp", "127.0.0.1:0")
	got2, _ := s.Listen("tcp", "127.0.0.1:0")
	got3, _ := s.Listen("tcp", "127.0.0.1:0")
	a := func(l net.Listener) string { return l.Addr().String() }
	if a(got1) != a(l1) || a(got2) != a(l2) || a(got3) == a(l1) || a(got3) == a(l2) {
		t.Fatalf("got %v %v %v from %v %v", got1.Addr(), got2.Addr(), got3.Addr(), l1.Addr(), l2.Addr())
	}
	s.CloseUnused()
	if _, err := l3.Accept(); err == nil {
		t.Fatal("an unclaimed inherited socket stayed open")
	}
	for _, l := range []net.Listener{got1, got2, got3} {
		l.Close()
	}
}

func TestChildEnv(t *testing.T) {
	got := childEnv([]string{"PATH=/bin", "WATCHDOG_PID=12", "WATCHDOG_USEC=30000000", EnvFDs + "=x", "NOTIFY_SOCKET=/run/n"})
	want := []string{"PATH=/bin", "WATCHDOG_USEC=30000000", "NOTIFY_SOCKET=/run/n"}
	if !slices.Equal(got, want) {
		t.Fatalf("childEnv = %v, want %v", got, want)
	}
}
