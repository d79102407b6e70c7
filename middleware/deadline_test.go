package middleware_test

import (
	"context"
	"errors"
	"math/rand/v2"
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
