package middleware

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

type sharesKey struct{}

// TestNestedDeadlineSharesOneTimer: a call deadline under an unwatched run
// deadline, with only values between them (a run, a team, a CallInfo, a
// context.WithValue), is made real alone when watched, at the earlier of
// the two deadlines, and ends then with its own cause; the run deadline
// stays unmade (no second timer). The run deadline's Stop ends it as
// context.Canceled. A cancellable context between the two, or a watched
// run deadline, makes them two contexts as before.
func TestNestedDeadlineSharesOneTimer(t *testing.T) {
	t.Parallel()
	runWhy, callWhy := errors.New("run deadline"), errors.New("call deadline")
	nest := func(between func(context.Context) context.Context) (outer, inner *Deadline) {
		ctx, _ := StartRun(context.Background(), "r")
		ctx, _ = StartCall(ctx, CallFacts{})
		outer = WithDeadline(ctx, time.Now().Add(5*time.Minute), runWhy)
		mid := context.WithValue(WithTeam(outer, "ops"), sharesKey{}, 1)
		mid, _ = StartCall(between(mid), CallFacts{})
		return outer, WithDeadline(mid, time.Now().Add(30*time.Second), callWhy)
	}
	values := func(ctx context.Context) context.Context { return ctx }
	synctest.Test(t, func(t *testing.T) {
		outer, inner := nest(values)
		start := time.Now()
		<-inner.Done()
		if time.Since(start) != 30*time.Second || context.Cause(inner) != callWhy || !errors.Is(inner.Err(), context.DeadlineExceeded) {
			t.Fatalf("after %v: %v, %v", time.Since(start), inner.Err(), context.Cause(inner))
		}
		if outer.made() != nil || outer.Err() != nil {
			t.Fatal("the run deadline was made real, or ended")
		}
		if inner.Value(sharesKey{}) != 1 || TeamFrom(inner) != "ops" || RunFrom(inner) == nil {
			t.Fatal("values lost")
		}
		outer.Stop()
		inner.Stop()
	})
	synctest.Test(t, func(t *testing.T) {
		outer, inner := nest(values)
		done := inner.Done()
		time.Sleep(time.Second)
		outer.Stop()
		synctest.Wait()
		if !closed(done) || inner.Err() != context.Canceled || context.Cause(inner) != context.Canceled {
			t.Fatalf("after the run deadline's Stop: %v, %v", inner.Err(), context.Cause(inner))
		}
		inner.Stop()
	})
	synctest.Test(t, func(t *testing.T) {
		outer, inner := nest(func(ctx context.Context) context.Context {
			ctx, cancel := context.WithCancel(ctx)
			t.Cleanup(cancel)
			return ctx
		})
		if outer.made() == nil || inner.made() == nil {
			t.Fatal("a cancellable context between them: both must be real at once")
		}
		inner.Stop()
		outer.Stop()
	})
	synctest.Test(t, func(t *testing.T) {
		ctx, _ := StartRun(context.Background(), "r")
		outer := WithDeadline(ctx, time.Now().Add(10*time.Second), runWhy)
		inner := WithDeadline(context.WithValue(outer, sharesKey{}, 1), time.Now().Add(30*time.Second), callWhy)
		start := time.Now()
		<-inner.Done() // the run deadline is the earlier one: its cause
		if time.Since(start) != 10*time.Second || context.Cause(inner) != runWhy || outer.made() != nil {
			t.Fatalf("after %v: %v (run deadline made: %v)", time.Since(start), context.Cause(inner), outer.made() != nil)
		}
		if context.Cause(outer) != runWhy {
			t.Fatalf("run deadline's cause %v", context.Cause(outer))
		}
		inner.Stop()
		outer.Stop()
	})
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestLazyOverAllocatesNothing: finding the unmade Deadline a call
// deadline sits under (through a run, a CallInfo, a team and a
// context.WithValue) costs no allocation, as it runs for every call the
// timeout layer bounds; and it still finds that Deadline, and none once
// it is stopped.
func TestLazyOverAllocatesNothing(t *testing.T) {
	ctx, _ := StartRun(context.Background(), "r")
	outer := WithDeadline(ctx, time.Now().Add(time.Hour), errors.New("run deadline"))
	defer outer.Stop()
	mid, _ := StartCall(context.WithValue(WithTeam(outer, "ops"), sharesKey{}, 1), CallFacts{})
	if got := lazyOver(mid); got != outer {
		t.Fatalf("lazyOver = %p, want the run deadline %p", got, outer)
	}
	if a := testing.AllocsPerRun(100, func() { _ = lazyOver(mid) }); a != 0 {
		t.Errorf("lazyOver: %v allocations, want 0", a)
	}
	outer.Stop()
	if got := lazyOver(mid); got != nil {
		t.Fatalf("lazyOver of a stopped deadline = %p, want nil", got)
	}
}

// TestCallDeadlineUnderAMadeRunDeadlineAllocatesLess pins what a call
// deadline under a run deadline made real at once (under a request's
// context, which can end: the gateway's) costs: the run deadline's
// context gets no child of its own (no map of children, no Done channel
// made for it) — the call deadline is made under the request's context,
// cancelled by the run deadline's Stop — and the call deadline still
// ends at its deadline with its cause, and at the run deadline's Stop or
// the request's end with theirs.
func TestCallDeadlineUnderAMadeRunDeadlineAllocatesLess(t *testing.T) {
	runWhy, callWhy := errors.New("run deadline"), errors.New("call deadline")
	req, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	ctx, _ := StartRun(req, "r")
	call := func() (outer, inner *Deadline) {
		outer = WithDeadline(ctx, time.Now().Add(time.Hour), runWhy)
		mid, _ := StartCall(context.WithValue(WithTeam(outer, "ops"), sharesKey{}, 1), CallFacts{})
		return outer, WithDeadline(mid, time.Now().Add(30*time.Second), callWhy)
	}
	outer, inner := call()
	if outer.made() == nil || inner.made() == nil {
		t.Fatal("under a context that can end, both are made at once")
	}
	if inner.fused != nil || len(outer.fused) != 1 || outer.fused[0] != inner {
		t.Fatal("the call deadline is not fused under the run deadline's parent")
	}
	inner.Stop()
	outer.Stop()
	// The run deadline and its timerCtx, timer and closure, the values
	// and CallInfo between them (the call deadline in the CallInfo's
	// allocation), the call deadline's timerCtx, timer and closure, and
	// a Done channel for it (what a transport's AfterFunc asks for): 13.
	// Under the run deadline's context, the call deadline cost three
	// more (16): that context's map of children and its Done channel.
	n := testing.AllocsPerRun(200, func() {
		o, i := call()
		_ = i.Done()
		i.Stop()
		o.Stop()
	})
	if n != 13 {
		t.Errorf("a call deadline under a made run deadline: %v allocations, want 13", n)
	}
	synctest.Test(t, func(t *testing.T) {
		req, cancel := context.WithCancelCause(context.Background())
		defer cancel(nil)
		for _, end := range []string{"deadline", "stop", "request"} {
			outer := WithDeadline(req, time.Now().Add(time.Hour), runWhy)
			inner := WithDeadline(context.WithValue(outer, sharesKey{}, 1), time.Now().Add(30*time.Second), callWhy)
			var why error
			switch end {
			case "deadline":
				why = callWhy
			case "stop":
				time.Sleep(time.Second)
				outer.Stop()
				why = context.Canceled
			case "request":
				time.Sleep(time.Second)
				cancel(errors.New("client gone"))
				why = context.Cause(req)
			}
			<-inner.Done()
			if context.Cause(inner) != why || context.Cause(inner) != context.Cause(outer) && end != "deadline" {
				t.Errorf("%s: the call deadline's cause %v, the run deadline's %v, want %v", end, context.Cause(inner), context.Cause(outer), why)
			}
			if inner.Value(sharesKey{}) != 1 {
				t.Errorf("%s: values lost", end)
			}
			inner.Stop()
			outer.Stop()
		}
	})
}
