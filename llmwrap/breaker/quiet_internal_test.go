package breaker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/tokenwise/tokenwise/middleware"
)

// TestQuietBreakerMatchesGobreaker is a differential property test of the
// breaker's fast path (finish skipping a clean breaker's successes and
// uncounted calls): over random sequences of admissions, verdicts
// (success, failure, not counted) of calls in flight in any order, and
// time passing (in a synctest bubble), a breaker of the Set and a plain
// gobreaker breaker with the same settings, told every verdict, admit and
// refuse the same calls with the same errors (the half-open probe limit
// included), go through the same state changes at the same steps, and
// count the same consecutive and total failures at every step.
func TestQuietBreakerMatchesGobreaker(t *testing.T) {
	const sequences, steps = 1500, 250
	quiet := 0
	for seq := range sequences {
		r := rand.New(rand.NewPCG(uint64(seq), 17))
		cfg := Config{
			ConsecutiveFailures: 1 + r.IntN(4),
			OpenFor:             time.Duration(1+r.IntN(10)) * time.Second,
			HalfOpenProbes:      1 + r.IntN(3),
			Window:              time.Duration(1+r.IntN(20)) * time.Second,
		}
		if seq%10 == 9 {
			// A ratio rule too: no fast path, the same behaviour.
			cfg.FailureRatio, cfg.MinRequests = 0.5, 1+r.IntN(5)
		}
		synctest.Test(t, func(t *testing.T) {
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ours := s.newBreaker("m")
			if ours.quiet {
				quiet++
			}
			ref := &modelBreaker{}
			ref.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](s.settings("m", ref))
			type call struct{ ours, ref func(error) }
			var inflight []call
			verdicts := []error{nil, errors.New("503"), errExcluded}
			for step := range steps {
				what := ""
				switch k := r.IntN(10); {
				case k < 4:
					d1, e1 := ours.cb.Allow()
					d2, e2 := ref.cb.Allow()
					what = fmt.Sprintf("admit: %v / gobreaker %v", e1, e2)
					if !errors.Is(e1, e2) || (e1 == nil) != (e2 == nil) {
						t.Fatalf("seq %d (%+v) step %d: %s", seq, cfg, step, what)
					}
					if e1 == nil {
						inflight = append(inflight, call{d1, d2})
					}
				case k < 8 && len(inflight) > 0:
					i := r.IntN(len(inflight))
					c := inflight[i]
					inflight = slices.Delete(inflight, i, i+1)
					v := verdicts[r.IntN(len(verdicts))]
					what = fmt.Sprintf("verdict %v", v)
					ours.finish(c.ours, v)
					c.ref(v)
				default:
					d := time.Duration(r.Int64N(int64(cfg.Window) / 5))
					if r.IntN(8) == 0 {
						d = cfg.OpenFor + time.Duration(r.Int64N(int64(time.Second)))
					}
					what = fmt.Sprintf("sleep %v", d)
					time.Sleep(d)
				}
				if r.IntN(4) == 0 {
					// State rolls the window and turns an open breaker
					// half-open: the same for both.
					if a, b := ours.cb.State(), ref.cb.State(); a != b {
						t.Fatalf("seq %d (%+v) step %d (%s): state %v, gobreaker %v", seq, cfg, step, what, a, b)
					}
					a, b := ours.cb.Counts(), ref.cb.Counts()
					if a.ConsecutiveFailures != b.ConsecutiveFailures || a.TotalFailures != b.TotalFailures {
						t.Fatalf("seq %d (%+v) step %d (%s): counts %+v, gobreaker %+v", seq, cfg, step, what, a, b)
					}
				}
				if !slices.Equal(ours.pending, ref.pending) {
					t.Fatalf("seq %d (%+v) step %d (%s): changes %v, gobreaker %v", seq, cfg, step, what, ours.pending, ref.pending)
				}
			}
		})
	}
	if quiet < sequences/2 {
		t.Fatalf("only %d of %d sequences had a quiet breaker", quiet, sequences)
	}
}

// TestQuietBreakerSkipsCleanSuccesses pins the fast path: the successes of
// a closed breaker with no failure counted are not reported to gobreaker
// (before, each was: 8 successes here), and a failure makes it report
// them again until its window holds no failure.
func TestQuietBreakerSkipsCleanSuccesses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := New(Config{ConsecutiveFailures: 3, Window: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		fail := false
		h := s.Middleware()(middleware.HandlerFunc(func(context.Context, *middleware.Request) (*middleware.Response, error) {
			if fail {
				return nil, &middleware.ProviderError{Kind: middleware.ErrUnavailable, Model: "m", StatusCode: 503}
			}
			return &middleware.Response{Model: "m"}, nil
		}))
		do := func() {
			_, _ = h.Handle(context.Background(), &middleware.Request{Model: "m"})
		}
		for range 8 {
			do()
		}
		b := s.get("m")
		if c := b.cb.Counts(); c.TotalSuccesses != 0 || c.Requests != 8 {
			t.Fatalf("after 8 successes on a clean breaker gobreaker counts %+v, want 8 requests and no success reported", c)
		}
		fail = true
		do()
		fail = false
		do() // reported: the window holds a failure
		if c := b.cb.Counts(); c.TotalSuccesses != 1 || c.TotalFailures != 1 || c.ConsecutiveFailures != 0 {
			t.Fatalf("after a failure and a success gobreaker counts %+v, want 1 success and 1 failure reported", c)
		}
		time.Sleep(11 * time.Second) // the failure leaves the window
		do()                         // reported: rolls the window, then the breaker is clean
		do()                         // not reported
		if c := b.cb.Counts(); c.TotalSuccesses != 1 || c.TotalFailures != 0 {
			t.Fatalf("after the failure left the window gobreaker counts %+v, want the first success only", c)
		}
	})
}
