package listener

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"tlsgate/internal/httpproxy"
)

var _ httpproxy.Cancelable = (*reqCtx)(nil)

// reqCtx keeps AfterFunc's contract for its one function: it runs once at cancel (at
// once when registered after), a withdrawn one never, and stop tells which happened;
// Done, Err and Cause follow the first cancel.
func TestReqCtx(t *testing.T) {
	t.Run("runs at cancel", func(t *testing.T) {
		rc := newReqCtx(context.Background())
		ran := 0
		rc.OnCancel(func() { ran++ })
		rc.cancel(httpproxy.ErrClientClosed)
		rc.cancel(errors.New("second"))
		if ran != 1 || rc.StopOnCancel() {
			t.Fatalf("ran %d times, stop true; want once and false", ran)
		}
		select {
		case <-rc.Done():
		default:
			t.Fatal("Done not closed")
		}
		if !errors.Is(rc.Err(), context.Canceled) || !errors.Is(rc.Cause(), httpproxy.ErrClientClosed) {
			t.Fatalf("err %v, cause %v", rc.Err(), rc.Cause())
		}
	})
	t.Run("withdrawn", func(t *testing.T) {
		rc := newReqCtx(context.Background())
		done := rc.Done()
		ran := false
		rc.OnCancel(func() { ran = true })
		if !rc.StopOnCancel() {
			t.Fatal("stop before cancel: false")
		}
		rc.cancel(nil)
		<-done
		if ran || !errors.Is(rc.Cause(), context.Canceled) {
			t.Fatalf("ran %v, cause %v; want not run, Canceled", ran, rc.Cause())
		}
	})
	t.Run("registered after cancel", func(t *testing.T) {
		rc := newReqCtx(context.Background())
		rc.cancel(nil)
		ran := false
		rc.OnCancel(func() { ran = true })
		if !ran || rc.StopOnCancel() {
			t.Fatal("a function registered after cancel must run at once, and stop report false")
		}
	})
}

// TestReqCtxReset: a reused reqCtx keeps nothing of its last request (its end, its
// cancel function, its channel), every field but the lock and the new parent and
// connection zero; a field added later is covered too.
func TestReqCtxReset(t *testing.T) {
	rc := newReqCtx(context.Background())
	rc.watch = &clientWatch{}
	_ = rc.Done()
	rc.OnCancel(func() {})
	rc.cancel(errors.New("gone"))
	h := &h1conn{}
	rc.reset(context.TODO(), h)
	v := reflect.ValueOf(rc).Elem()
	for i := range v.NumField() {
		switch name := v.Type().Field(i).Name; name {
		case "mu":
		case "Context":
			if rc.Context != context.TODO() {
				t.Errorf("Context not the new parent")
			}
		case "h":
			if rc.h != h {
				t.Errorf("h not the new connection")
			}
		default:
			if !v.Field(i).IsZero() {
				t.Errorf("%s kept from the last request", name)
			}
		}
	}
	if rc.Err() != nil {
		t.Fatalf("Err %v after reset", rc.Err())
	}
}
