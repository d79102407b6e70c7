package middleware_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

var errExtTotal = errors.New("total")

// An extendable deadline left unmade (nothing watched it) and extended
// ends exactly when one made at once and extended alike does, with the
// same Err, cause and Deadline at every instant, whenever it is made (or
// never), stopped or not; and so does a call deadline under each (behind
// WithoutDeadline, as the timeout layer puts it), which stays lazy under
// the lazy one. Random limits, extensions (longer or shorter, before and
// after the deadline), checks at each deadline's instant and just before.
func TestExtendableDeadlineLazyEndsAsMade(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for i := range 300 {
		seed := rng.Uint64()
		synctest.Test(t, func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 1))
			causes := map[time.Duration]error{}
			cause := func(l time.Duration) error {
				if causes[l] == nil {
					causes[l] = &middleware.DeadlineError{Cause: errExtTotal, Limit: l}
				}
				return causes[l]
			}
			sec := func(n int) time.Duration { return time.Duration(1+r.IntN(n)) * time.Second }
			start, limit := time.Now(), sec(60)
			made := middleware.WithExtendableDeadline(context.Background(), start, limit, cause(limit))
			if made.Done() == nil {
				t.Fatal("Done is nil")
			}
			lazy := middleware.WithExtendableDeadline(context.Background(), start, limit, cause(limit))
			callLimit := sec(90) + 500*time.Millisecond // never at a total's instant: two timers of one instant fire in any order
			callCause := &middleware.DeadlineError{Cause: errors.New("call"), Limit: callLimit}
			kidMade := middleware.WithDeadline(middleware.WithoutDeadline(made), start.Add(callLimit), callCause)
			kidLazy := middleware.WithDeadline(middleware.WithoutDeadline(lazy), start.Add(callLimit), callCause)
			// Ends the watching goroutines, if a check fails too.
			defer func() {
				for _, d := range []*middleware.Deadline{made, lazy, kidMade, kidLazy} {
					d.Stop()
				}
			}()

			// Steps, at offsets from start: extensions, the lazy one's
			// making (maybe never), a Stop (maybe never), checks.
			type step struct {
				at     time.Duration
				what   int // 0 check, 1 extend, 2 make lazy, 3 stop, 4 make kid
				extend time.Duration
			}
			var steps []step
			for range r.IntN(5) {
				steps = append(steps, step{at: sec(120), what: 1, extend: sec(180)})
			}
			if r.IntN(4) != 0 {
				steps = append(steps, step{at: time.Duration(r.IntN(200)) * time.Second, what: 2})
			}
			if r.IntN(3) != 0 {
				steps = append(steps, step{at: time.Duration(r.IntN(200)) * time.Second, what: 4})
			}
			if r.IntN(4) == 0 {
				steps = append(steps, step{at: sec(200), what: 3})
			}
			for _, s := range slices.Clone(steps) {
				if s.what == 1 {
					steps = append(steps, step{at: s.extend - 1}, step{at: s.extend})
				}
			}
			steps = append(steps, step{at: limit - 1}, step{at: limit}, step{at: callLimit - 1}, step{at: callLimit}, step{at: 400 * time.Second})
			slices.SortStableFunc(steps, func(a, b step) int { return int(a.at - b.at) })

			var endMade, endLazy time.Time
			lazyWatched := false
			watch := func(ctx context.Context, end *time.Time) {
				go func() {
					<-ctx.Done()
					*end = time.Now()
				}()
			}
			watch(made, &endMade)
			for _, s := range steps {
				time.Sleep(time.Until(start.Add(s.at)))
				synctest.Wait()
				switch s.what {
				case 1:
					made.Extend(s.extend, cause(s.extend))
					lazy.Extend(s.extend, cause(s.extend))
				case 2:
					if !lazyWatched {
						lazyWatched = true
						watch(lazy, &endLazy)
						synctest.Wait()
					}
				case 3:
					made.Stop()
					lazy.Stop()
				case 4:
					_ = kidLazy.Done()
				}
				for _, c := range []struct {
					name      string
					made, lzy context.Context
				}{{"total", made, lazy}, {"call", kidMade, kidLazy}} {
					m, l := c.made.Err(), c.lzy.Err()
					if c.name == "call" && m != nil && l != nil {
						// A context made under an ended one takes its Err
						// (context.DeadlineExceeded), one made before it
						// ended context.Canceled, as under any made
						// extendable deadline: the cause tells.
						m, l = nil, nil
					}
					if m != l {
						t.Fatalf("seed %d, at %v (steps %+v, limit %v, call %v): %s Err made %v, lazy %v", seed, s.at, steps, limit, callLimit, c.name, m, l)
					}
					if m, l := context.Cause(c.made), context.Cause(c.lzy); m != l {
						t.Fatalf("seed %d, at %v: %s cause made %v, lazy %v", seed, s.at, c.name, m, l)
					}
					md, _ := c.made.Deadline()
					ld, _ := c.lzy.Deadline()
					if !md.Equal(ld) {
						t.Fatalf("seed %d, at %v: %s Deadline made %v, lazy %v", seed, s.at, c.name, md, ld)
					}
				}
			}
			made.Stop()
			lazy.Stop()
			kidMade.Stop()
			kidLazy.Stop()
			synctest.Wait()
			if endMade.IsZero() {
				t.Fatalf("seed %d: the made deadline never ended", seed)
			}
			// Made before the made one ended, the lazy one ends when it
			// does; made after, at once.
			for _, s := range steps {
				if s.what != 2 {
					continue
				}
				want := endMade
				if at := start.Add(s.at); !at.Before(endMade) {
					want = at
				}
				if !endLazy.Equal(want) {
					t.Fatalf("seed %d: lazy made at %v ended at %v, want %v (the made one: %v)",
						seed, s.at, endLazy.Sub(start), want.Sub(start), endMade.Sub(start))
				}
				break
			}
		})
		if t.Failed() {
			t.Fatalf("iteration %d", i)
		}
	}
}
