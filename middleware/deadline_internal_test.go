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
