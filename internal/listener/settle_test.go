package listener

import (
	"crypto/tls"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"tlsgate/internal/config"
	"tlsgate/internal/metrics"
	"tlsgate/internal/tlsconf"
)

// TestSettleAfterBurst: the settle runs once a burst of handshakes has paused for the
// quiet time, not before the burst is whole, not while handshakes keep coming, and not
// again until a whole new burst.
func TestSettleAfterBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var settled atomic.Int32
		s := newSettler(func() { settled.Add(1) })
		defer s.stop()
		expect := func(when string, n int32) {
			t.Helper()
			synctest.Wait()
			if got := settled.Load(); got != n {
				t.Fatalf("%s: %d settles, want %d", when, got, n)
			}
		}
		shake := func(n int64) {
			for range n {
				s.handshake(time.Now())
			}
		}
		shake(settleBurst - 1)
		time.Sleep(10 * settleQuiet)
		expect("one handshake short of a burst", 0)

		shake(1)
		for range 10 { // a handshake every half quiet time: the burst goes on
			time.Sleep(settleQuiet / 2)
			shake(1)
		}
		expect("while handshakes keep coming", 0)
		time.Sleep(settleQuiet - time.Millisecond)
		expect("just before the quiet time has passed", 0)
		time.Sleep(2 * time.Millisecond)
		expect("after the quiet time", 1)
		time.Sleep(10 * settleQuiet)
		expect("long after", 1)

		shake(settleBurst - 1)
		time.Sleep(10 * settleQuiet)
		expect("a second burst one handshake short", 1)
		shake(1)
		time.Sleep(settleQuiet + time.Millisecond)
		expect("after the second burst", 2)
	})
}

// TestSettleStopped: a settler stopped (Shutdown) while armed never settles.
func TestSettleStopped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var settled atomic.Int32
		s := newSettler(func() { settled.Add(1) })
		for range settleBurst {
			s.handshake(time.Now())
		}
		s.stop()
		time.Sleep(10 * settleQuiet)
		synctest.Wait()
		if settled.Load() != 0 {
			t.Fatal("a stopped settler settled")
		}
	})
}

// TestRetireWorkers: the settle makes every parked worker exit (their stacks are
// freed) and a later task still runs, on a new worker.
func TestRetireWorkers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, _, _ := newScripted(t, &scripted{})
		const n = 8
		release := make(chan struct{})
		for range n { // n tasks at once: n workers
			l.dispatch(func() { <-release })
		}
		close(release)
		synctest.Wait()
		if got := l.idleWorkers.Load(); got != n {
			t.Fatalf("%d parked workers, want %d", got, n)
		}
		exited := make(chan struct{})
		go func() { l.wg.Wait(); close(exited) }()
		l.retireWorkers()
		synctest.Wait()
		select {
		case <-exited:
		default:
			t.Fatalf("workers still running after the settle (%d parked)", l.idleWorkers.Load())
		}
		if got := l.idleWorkers.Load(); got != 0 {
			t.Fatalf("%d parked workers after the settle, want 0", got)
		}
		ran := make(chan struct{})
		l.dispatch(func() { close(ran) })
		<-ran
		l.stopOnce.Do(func() { close(l.stopWorkers) })
	})
}

// TestHandshakesCounted: every handshake a listener runs, failed ones too, counts
// toward the burst that makes it settle.
func TestHandshakesCounted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	auth := &tlsconf.Auth{Config: &tls.Config{}, Mode: config.ModeOneWay}
	st := NewState(&State{ID: "l", Protocol: config.ProtoTCPSSL, Default: &Domain{Auth: auth}, HandshakeTimeout: 10 * time.Second}, nil)
	l := New(ln, st, Deps{Log: slog.New(slog.DiscardHandler), Metrics: metrics.New()})
	defer l.settle.stop()
	for i := range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write([]byte("GET / HTTP/1.1\r\n\r\n")) // not TLS: the handshake fails
		l.open.Add(1)
		l.handle(s)
		c.Close()
		if got := l.settle.count.Load(); got != int64(i+1) {
			t.Fatalf("%d handshakes counted after %d", got, i+1)
		}
	}
	l.staying.Add(1) // a worker waits for its connection's next request
	if l.settle.busy == nil || !l.settle.busy() {
		t.Fatal("the settle is not held back by a staying worker")
	}
}

// TestSettleWaitsWhileBusy: after the quiet time, the settle still waits while the
// listener's workers wait for their connections' next requests.
func TestSettleWaitsWhileBusy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var settled atomic.Int32
		var busy atomic.Bool
		busy.Store(true)
		s := newSettler(func() { settled.Add(1) })
		s.busy = busy.Load
		defer s.stop()
		for range settleBurst {
			s.handshake(time.Now())
		}
		time.Sleep(10 * settleQuiet)
		synctest.Wait()
		if settled.Load() != 0 {
			t.Fatal("settled while busy")
		}
		busy.Store(false)
		time.Sleep(settleQuiet)
		synctest.Wait()
		if settled.Load() != 1 {
			t.Fatalf("%d settles once no longer busy, want 1", settled.Load())
		}
	})
}
