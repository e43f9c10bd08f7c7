package ticketkeys_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
	"tlsgate/internal/ticketkeys"
)

// clock is a settable fake clock shared by the ring, the server and the client.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = pkitest.Now.Add(d)
}

// sessions is a client's session cache holding one session: the latest it is given, or
// with first the first one (later handshakes then offer that same ticket, even when a
// resumption brought a fresh one under a newer key).
type sessions struct {
	first bool
	mu    sync.Mutex
	ss    *tls.ClientSessionState
}

func (c *sessions) Get(string) (*tls.ClientSessionState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ss, c.ss != nil
}

func (c *sessions) Put(_ string, ss *tls.ClientSessionState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ss != nil && (c.ss == nil || !c.first) {
		c.ss = ss
	}
}

// ticket is the ticket the client holds.
func (c *sessions) ticket(t *testing.T) []byte {
	t.Helper()
	ss, ok := c.Get("")
	if !ok {
		t.Fatal("the client holds no ticket")
	}
	ticket, _, err := ss.ResumptionState()
	if err != nil {
		t.Fatal(err)
	}
	return ticket
}

type fixture struct {
	clk    *clock
	leaf   tls.Certificate
	roots  *tls.Config // client template
	client *sessions
}

func newFixture(t *testing.T) *fixture {
	ca := pkitest.New(t, "ticket root", pki.ECDSAP256)
	leaf := ca.Issue("localhost", pkitest.Server("localhost"))
	clk := &clock{t: pkitest.Now}
	return &fixture{clk: clk, leaf: leaf.TLS(), client: &sessions{first: true},
		roots: &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", Time: clk.Now}}
}

// server returns a server config whose ticket keys follow ring under identity.
func (f *fixture) server(ring *ticketkeys.Ring, identity string) *tls.Config {
	cfg := &tls.Config{Certificates: []tls.Certificate{f.leaf}, Time: f.clk.Now}
	ring.Attach(cfg, identity, nil)
	return cfg
}

// resumed runs one handshake over loopback at version and reports whether it resumed.
func (f *fixture) resumed(t *testing.T, srv *tls.Config, version uint16) bool {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		tc := tls.Server(c, srv)
		if tc.Handshake() == nil {
			_, _ = tc.Write([]byte{1}) // a read on the client takes the TLS 1.3 ticket in
		}
	})
	defer wg.Wait()
	cfg := f.roots.Clone()
	cfg.MinVersion, cfg.MaxVersion, cfg.ClientSessionCache = version, version, f.client
	c, err := tls.Dial("tcp", ln.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	return c.ConnectionState().DidResume
}

func versions(t *testing.T, f func(t *testing.T, version uint16)) {
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(v), func(t *testing.T) { t.Parallel(); f(t, v) })
	}
}

// TestRotationLifetime: a ticket issued before a rotation still resumes after it while
// its key is kept (one more rotation period), and no longer once the key is dropped.
func TestRotationLifetime(t *testing.T) {
	versions(t, func(t *testing.T, v uint16) {
		f := newFixture(t)
		ring := ticketkeys.New(ticketkeys.Options{Now: f.clk.Now})
		srv := f.server(ring, "listener a")
		f.clk.Set(time.Hour)
		if f.resumed(t, srv, v) {
			t.Fatal("first handshake resumed")
		}
		steps := []struct {
			at     time.Duration
			keys   int
			resume bool
		}{
			{2 * time.Hour, 1, true},
			{24 * time.Hour, 2, true},  // rotated: the ticket's key now only decrypts
			{47 * time.Hour, 2, true},  // still inside its lifetime
			{48 * time.Hour, 2, false}, // rotated again: the ticket's key is dropped
			{60 * time.Hour, 2, false},
		}
		for _, s := range steps {
			f.clk.Set(s.at)
			ring.Rotate()
			if n := len(ring.Masters()); n != s.keys {
				t.Fatalf("at %v: %d masters, want %d", s.at, n, s.keys)
			}
			if got := f.resumed(t, srv, v); got != s.resume {
				t.Fatalf("at %v: resumed = %v, want %v", s.at, got, s.resume)
			}
		}
	})
}

// TestPolicySeparation: two policies on one ring never accept each other's tickets,
// before or after a rotation, while each accepts its own.
func TestPolicySeparation(t *testing.T) {
	versions(t, func(t *testing.T, v uint16) {
		f := newFixture(t)
		ring := ticketkeys.New(ticketkeys.Options{Now: f.clk.Now})
		oneWay, mutual := f.server(ring, "one-way"), f.server(ring, "mutual, CA B")
		f.resumed(t, oneWay, v)
		if f.resumed(t, mutual, v) {
			t.Fatal("a one-way ticket resumed under the mutual policy")
		}
		f.clk.Set(25 * time.Hour)
		ring.Rotate()
		if f.resumed(t, mutual, v) {
			t.Fatal("after a rotation, a one-way ticket resumed under the mutual policy")
		}
		if !f.resumed(t, oneWay, v) {
			t.Fatal("the ticket no longer resumes under its own policy")
		}
	})
}

// TestSetMasters: two nodes given the same set resume each other's tickets; a pushed set
// that keeps the old master second keeps old tickets resuming, one without it ends them;
// a ring fed from outside never rotates on its own.
func TestSetMasters(t *testing.T) {
	versions(t, func(t *testing.T, v uint16) {
		f := newFixture(t)
		a, b := ticketkeys.New(ticketkeys.Options{Now: f.clk.Now}), ticketkeys.New(ticketkeys.Options{Now: f.clk.Now})
		srvA, srvB := f.server(a, "site"), f.server(b, "site")
		old := ticketkeys.NewMaster(f.clk.Now())
		for _, r := range []*ticketkeys.Ring{a, b} {
			if err := r.SetMasters([]ticketkeys.Master{old}); err != nil {
				t.Fatal(err)
			}
		}
		f.resumed(t, srvA, v)
		if !f.resumed(t, srvB, v) {
			t.Fatal("node b did not resume node a's ticket under the same set")
		}
		f.clk.Set(100 * time.Hour)
		a.Rotate()
		if ms := a.Masters(); len(ms) != 1 || ms[0].Secret != old.Secret {
			t.Fatal("an externally fed ring rotated on its own")
		}
		newer := ticketkeys.NewMaster(f.clk.Now())
		if err := b.SetMasters([]ticketkeys.Master{old, newer}); err != nil { // order fixed by Created
			t.Fatal(err)
		}
		if b.Masters()[0].Secret != newer.Secret {
			t.Fatal("the newest master does not encrypt")
		}
		if !f.resumed(t, srvB, v) {
			t.Fatal("the old ticket stopped resuming while its master is still in the set")
		}
		if err := b.SetMasters([]ticketkeys.Master{newer}); err != nil {
			t.Fatal(err)
		}
		if f.resumed(t, srvB, v) {
			t.Fatal("the old ticket resumed after its master left the set")
		}
	})
}

func TestSetMastersRefuses(t *testing.T) {
	r := ticketkeys.New(ticketkeys.Options{})
	m := ticketkeys.NewMaster(time.Now())
	many := make([]ticketkeys.Master, ticketkeys.MaxMasters+1)
	for i := range many {
		many[i] = ticketkeys.NewMaster(time.Now())
	}
	for _, tc := range []struct {
		name string
		ms   []ticketkeys.Master
	}{
		{"empty", nil},
		{"too many", many},
		{"zero secret", []ticketkeys.Master{{Created: time.Now()}}},
		{"duplicate", []ticketkeys.Master{m, m}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := r.SetMasters(tc.ms); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// TestRunRotatesOnTime: the rotator draws a master every period and drops the one
// before, and a new period applies at once, under synctest's fake clock.
func TestRunRotatesOnTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := ticketkeys.New(ticketkeys.Options{})
		first := r.Masters()[0]
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { r.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		time.Sleep(24*time.Hour - time.Second)
		synctest.Wait()
		if n := len(r.Masters()); n != 1 {
			t.Fatalf("rotated early: %d masters", n)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if ms := r.Masters(); len(ms) != 2 || ms[1].Secret != first.Secret {
			t.Fatalf("after 24h: %v, want a new master and the first", ms)
		}
		time.Sleep(24 * time.Hour)
		synctest.Wait()
		if ms := r.Masters(); len(ms) != 2 || ms[0].Secret == first.Secret || ms[1].Secret == first.Secret {
			t.Fatalf("after 48h: %v, want the first dropped", ms)
		}
		r.SetRotation(time.Hour)
		synctest.Wait()
		time.Sleep(time.Hour)
		synctest.Wait()
		if ms := r.Masters(); !time.Now().Equal(ms[0].Created) {
			t.Fatalf("a 1h rotation set on the way did not apply: newest %v at %v", ms[0], time.Now())
		}
	})
}

// TestSecretsNotLogged: rotation log lines and every fmt verb show fingerprints only.
func TestSecretsNotLogged(t *testing.T) {
	var buf bytes.Buffer
	clk := &clock{t: pkitest.Now}
	r := ticketkeys.New(ticketkeys.Options{Now: clk.Now, Log: slog.New(slog.NewJSONHandler(&buf, nil))})
	clk.Set(25 * time.Hour)
	r.Rotate()
	ms := r.Masters()
	for _, m := range ms {
		fmt.Fprintf(&buf, "%v %+v %#v %s %x %q\n", m, m, m, m, m, m)
		fmt.Fprintf(&buf, "%v\n", ms)
	}
	out := buf.String()
	if !strings.Contains(out, "session ticket keys rotated") {
		t.Fatalf("no rotation line: %s", out)
	}
	for _, m := range ms {
		for _, enc := range []string{hex.EncodeToString(m.Secret[:]), strings.ToUpper(hex.EncodeToString(m.Secret[:])),
			base64.StdEncoding.EncodeToString(m.Secret[:]), fmt.Sprint(m.Secret[:8])} {
			if strings.Contains(out, enc) {
				t.Fatalf("a secret leaked as %s in: %s", enc, out)
			}
		}
	}
}

// TestResumeLocal: a ring handed back to local rotation keeps the pushed masters (old
// tickets still resume) and rotates on its own again.
func TestResumeLocal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := ticketkeys.New(ticketkeys.Options{})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { r.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		pushed := ticketkeys.NewMaster(time.Now())
		if err := r.SetMasters([]ticketkeys.Master{pushed}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(72 * time.Hour)
		synctest.Wait()
		if ms := r.Masters(); len(ms) != 1 || ms[0].Secret != pushed.Secret {
			t.Fatalf("an external set rotated: %v", ms)
		}
		r.ResumeLocal()
		synctest.Wait()
		ms := r.Masters()
		if len(ms) != 2 || ms[1].Secret != pushed.Secret || !ms[0].Created.Equal(time.Now()) {
			t.Fatalf("after ResumeLocal: %v, want a fresh master (the pushed one was 72h old) and the pushed one kept", ms)
		}
	})
}

// TestOldFormatTicket: a ticket in crypto/tls's own format (what tlsgate issued before
// it sealed tickets itself, and what a node not yet upgraded issues) makes a full
// handshake, not a failed one, at both versions.
func TestOldFormatTicket(t *testing.T) {
	versions(t, func(t *testing.T, v uint16) {
		f := newFixture(t)
		old := &tls.Config{Certificates: []tls.Certificate{f.leaf}, Time: f.clk.Now}
		old.SetSessionTicketKeys([][32]byte{{1}})
		f.resumed(t, old, v)
		if !f.resumed(t, old, v) {
			t.Fatal("the old-format server did not resume its own ticket")
		}
		if f.resumed(t, f.server(ticketkeys.New(ticketkeys.Options{Now: f.clk.Now}), "site"), v) {
			t.Fatal("an old-format ticket resumed")
		}
	})
}
