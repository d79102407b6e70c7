package middleware_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

// pair is one context of each kind under the same parent: the lazy
// middleware.WithDeadline and context.WithDeadlineCause.
type pair struct {
	lazy, std context.Context
}

// TestDeadlineActsAsWithDeadlineCause drives a middleware.WithDeadline and
// a context.WithDeadlineCause with the same parent through random
// sequences of everything a caller can do — wait, watch Done, ask Err,
// Cause and Deadline, derive children and AfterFuncs, cancel the parent,
// stop — and checks after every step that both answer the same.
func TestDeadlineActsAsWithDeadlineCause(t *testing.T) {
	t.Parallel()
	for seed := range uint64(300) {
		synctest.Test(t, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 17))
			why, parentWhy := errors.New("call deadline"), errors.New("parent cause")
			var root context.Context = context.Background()
			var parentCancel context.CancelCauseFunc
			if rng.IntN(3) > 0 {
				root, parentCancel = context.WithCancelCause(root)
			}
			if rng.IntN(3) == 0 { // a parent with an earlier (or later) deadline of its own
				var c context.CancelFunc
				root, c = context.WithTimeout(root, time.Duration(1+rng.IntN(40))*time.Millisecond)
				defer c()
			}
			if rng.IntN(2) == 0 { // in an instrumented call: its first deadline lives in the CallInfo
				root, _ = middleware.StartCall(root, middleware.CallFacts{})
				if rng.IntN(2) == 0 { // and this one is its second
					middleware.WithDeadline(root, time.Now().Add(time.Hour), why).Stop()
				}
			}
			dl := time.Now().Add(time.Duration(1+rng.IntN(30)) * time.Millisecond)
			lazy := middleware.WithDeadline(root, dl, why)
			std, stdCancel := context.WithDeadlineCause(root, dl, why)
			defer stdCancel()
			p := pair{lazy, std}
			pairs := []pair{p}
			var fired [2]atomic.Int32
			check := func(step string, watch bool) {
				t.Helper()
				synctest.Wait()
				for i, q := range pairs {
					if a, b := q.lazy.Err(), q.std.Err(); a != b {
						t.Fatalf("seed %d, %s, context %d: Err %v, want %v", seed, step, i, a, b)
					}
					if a, b := context.Cause(q.lazy), context.Cause(q.std); a != b {
						t.Fatalf("seed %d, %s, context %d: Cause %v, want %v", seed, step, i, a, b)
					}
					da, oka := q.lazy.Deadline()
					db, okb := q.std.Deadline()
					if !da.Equal(db) || oka != okb {
						t.Fatalf("seed %d, %s, context %d: Deadline %v %v, want %v %v", seed, step, i, da, oka, db, okb)
					}
					if watch {
						if a, b := closed(q.lazy.Done()), closed(q.std.Done()); a != b {
							t.Fatalf("seed %d, %s, context %d: Done closed %v, want %v", seed, step, i, a, b)
						}
					}
				}
				if a, b := fired[0].Load(), fired[1].Load(); a != b {
					t.Fatalf("seed %d, %s: AfterFunc ran %d times, want %d", seed, step, a, b)
				}
			}
			stopped := false
			for range 1 + rng.IntN(8) {
				switch rng.IntN(7) {
				case 0, 1:
					time.Sleep(time.Duration(rng.IntN(12))*time.Millisecond + 300*time.Microsecond)
					check("wait", rng.IntN(2) == 0)
				case 2:
					check("watch", true)
				case 3:
					c1, s1 := context.WithCancel(p.lazy)
					c2, s2 := context.WithCancel(p.std)
					defer s1()
					defer s2()
					pairs = append(pairs, pair{c1, c2})
					check("child", rng.IntN(2) == 0)
				case 4:
					stop1 := context.AfterFunc(p.lazy, func() { fired[0].Add(1) })
					stop2 := context.AfterFunc(p.std, func() { fired[1].Add(1) })
					defer stop1()
					defer stop2()
					check("afterfunc", false)
				case 5:
					if parentCancel != nil {
						parentCancel(parentWhy)
					}
					check("parent cancelled", rng.IntN(2) == 0)
				case 6:
					lazy.Stop()
					stdCancel()
					stopped = true
					check("stopped", rng.IntN(2) == 0)
				}
			}
			if !stopped {
				lazy.Stop()
				stdCancel()
			}
			check("end", true)
			lazy.Stop() // twice is fine
			if parentCancel != nil {
				parentCancel(nil)
			}
		})
	}
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// A Deadline nobody watches starts no timer and leaves nothing behind;
// its Err still reports the deadline once it has passed.
func TestDeadlineUnwatched(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		why := errors.New("why")
		d := middleware.WithDeadline(middleware.WithTeam(context.Background(), "ops"), time.Now().Add(time.Second), why)
		if d.Err() != nil || middleware.TeamFrom(d) != "ops" {
			t.Fatal("not running, or the parent's values lost")
		}
		time.Sleep(2 * time.Second)
		if !errors.Is(d.Err(), context.DeadlineExceeded) || context.Cause(d) != why || !closed(d.Done()) {
			t.Errorf("after the deadline: %v, %v", d.Err(), context.Cause(d))
		}
		d.Stop()
	})
}

type nestKey struct{}

// TestNestedDeadlinesActAsWithDeadlineCause is
// TestDeadlineActsAsWithDeadlineCause for a Deadline under another one
// with only values between them (the run guard's and the timeout layer's
// in a chain), which share one timer while the outer one is unwatched:
// an outer and an inner middleware.WithDeadline and the same two
// context.WithDeadlineCause, driven through random sequences of waits,
// watches of either or both, children and AfterFuncs of either, the
// parent's cancellation and either Stop in either order, answer the same
// after every step (Err, Cause, Deadline, Done and values of the contexts
// looked at: looking makes a context real, so each step looks at a random
// few of them).
func TestNestedDeadlinesActAsWithDeadlineCause(t *testing.T) {
	t.Parallel()
	for seed := range uint64(400) {
		synctest.Test(t, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 29))
			outerWhy, innerWhy, parentWhy := errors.New("run deadline"), errors.New("call deadline"), errors.New("parent cause")
			var root context.Context = context.Background()
			var parentCancel context.CancelCauseFunc
			if rng.IntN(4) == 0 {
				root, parentCancel = context.WithCancelCause(root)
			}
			if rng.IntN(2) == 0 {
				root, _ = middleware.StartCall(root, middleware.CallFacts{})
			}
			// Deadlines never equal (a tie of two timers has no order).
			dl1 := time.Now().Add(time.Duration(1+rng.IntN(30))*time.Millisecond + 250*time.Microsecond)
			dl2 := time.Now().Add(time.Duration(1+rng.IntN(30))*time.Millisecond + 550*time.Microsecond)
			outer := middleware.WithDeadline(root, dl1, outerWhy)
			outerStd, outerCancel := context.WithDeadlineCause(root, dl1, outerWhy)
			defer outerCancel()
			// Values between them, the same on both sides.
			var mid, midStd context.Context = outer, outerStd
			for i := range rng.IntN(4) {
				switch rng.IntN(3) {
				case 0:
					mid, midStd = context.WithValue(mid, nestKey{}, i), context.WithValue(midStd, nestKey{}, i)
				case 1:
					mid, midStd = middleware.WithTeam(mid, "t"+strconv.Itoa(i)), middleware.WithTeam(midStd, "t"+strconv.Itoa(i))
				case 2:
					mid, _ = middleware.StartCall(mid, middleware.CallFacts{Seq: i})
					midStd, _ = middleware.StartCall(midStd, middleware.CallFacts{Seq: i})
				}
			}
			inner := middleware.WithDeadline(mid, dl2, innerWhy)
			innerStd, innerCancel := context.WithDeadlineCause(midStd, dl2, innerWhy)
			defer innerCancel()
			pairs := []pair{{outer, outerStd}, {inner, innerStd}}
			var fired [2]atomic.Int32
			check := func(step string) {
				t.Helper()
				synctest.Wait()
				watch := rng.IntN(2) == 0
				for i, q := range pairs {
					if rng.IntN(3) == 0 && step != "end" {
						continue // not looked at this time
					}
					if a, b := q.lazy.Err(), q.std.Err(); a != b {
						t.Fatalf("seed %d, %s, context %d: Err %v, want %v", seed, step, i, a, b)
					}
					if rng.IntN(2) == 0 || step == "end" {
						if a, b := context.Cause(q.lazy), context.Cause(q.std); a != b {
							t.Fatalf("seed %d, %s, context %d: Cause %v, want %v", seed, step, i, a, b)
						}
					}
					da, oka := q.lazy.Deadline()
					db, okb := q.std.Deadline()
					if !da.Equal(db) || oka != okb {
						t.Fatalf("seed %d, %s, context %d: Deadline %v %v, want %v %v", seed, step, i, da, oka, db, okb)
					}
					if a, b := q.lazy.Value(nestKey{}), q.std.Value(nestKey{}); a != b || middleware.TeamFrom(q.lazy) != middleware.TeamFrom(q.std) {
						t.Fatalf("seed %d, %s, context %d: values differ", seed, step, i)
					}
					if watch {
						if a, b := closed(q.lazy.Done()), closed(q.std.Done()); a != b {
							t.Fatalf("seed %d, %s, context %d: Done closed %v, want %v", seed, step, i, a, b)
						}
					}
				}
				if a, b := fired[0].Load(), fired[1].Load(); a != b {
					t.Fatalf("seed %d, %s: AfterFunc ran %d times, want %d", seed, step, a, b)
				}
			}
			stops := [2]func(){func() { outer.Stop(); outerCancel() }, func() { inner.Stop(); innerCancel() }}
			for range 1 + rng.IntN(10) {
				which := rng.IntN(2) // 0 the outer pair, 1 the inner one
				p := pairs[which]
				switch rng.IntN(8) {
				case 0, 1:
					time.Sleep(time.Duration(rng.IntN(12))*time.Millisecond + 300*time.Microsecond)
					check("wait")
				case 2:
					check("look")
				case 3:
					c1, s1 := context.WithCancel(p.lazy)
					c2, s2 := context.WithCancel(p.std)
					defer s1()
					defer s2()
					pairs = append(pairs, pair{c1, c2})
					check("child")
				case 4:
					stop1 := context.AfterFunc(p.lazy, func() { fired[0].Add(1) })
					stop2 := context.AfterFunc(p.std, func() { fired[1].Add(1) })
					defer stop1()
					defer stop2()
					check("afterfunc")
				case 5:
					if parentCancel != nil {
						parentCancel(parentWhy)
					}
					check("parent cancelled")
				case 6:
					stops[which]()
					check("stopped")
				case 7:
					// A third Deadline under the inner one.
					dl3 := time.Now().Add(time.Duration(1+rng.IntN(20))*time.Millisecond + 750*time.Microsecond)
					d3 := middleware.WithDeadline(pairs[1].lazy, dl3, innerWhy)
					s3, c3 := context.WithDeadlineCause(pairs[1].std, dl3, innerWhy)
					defer d3.Stop()
					defer c3()
					pairs = append(pairs, pair{d3, s3})
					check("third")
				}
			}
			stops[rng.IntN(2)]()
			check("end")
			stops[0]()
			stops[1]()
			check("end")
			if parentCancel != nil {
				parentCancel(nil)
			}
		})
	}
}
