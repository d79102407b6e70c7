package ratelimit_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap/ratelimit"
	"github.com/tokenwise/tokenwise/middleware"
)

// For random workloads (callers, arrival gaps, waiting or rejecting, team
// shares), the calls admitted in any window of length w never exceed what
// the GCRA allows: burst/interval + w/interval + 1, for the model and for
// each team's share; and in wait mode every caller that could wait was
// admitted.
func TestAdmissionsNeverExceedTheLimit(t *testing.T) {
	t.Parallel()
	for seed := range uint64(12) {
		synctest.Test(t, func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
			rpm := int64(60 + r.IntN(600))
			burst := time.Duration(1+r.IntN(3)) * time.Second
			mode := []ratelimit.OnLimit{ratelimit.OnLimitWait, ratelimit.OnLimitReject}[r.IntN(2)]
			teams := map[string]ratelimit.TeamShare{"a": {Weight: 1}, "b": {Weight: float64(1 + r.IntN(3))}}
			l, err := ratelimit.New(ratelimit.Config{
				Models: map[string]ratelimit.ModelLimit{"m": {RPM: rpm, Burst: burst}},
				Teams:  teams, OnLimit: mode, MaxWait: time.Minute,
			})
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			at := map[string][]time.Duration{}
			start := time.Now()
			var wg sync.WaitGroup
			callers := 1 + r.IntN(12)
			for i := range callers {
				team := []string{"a", "b"}[i%2]
				gap := time.Duration(r.IntN(400)) * time.Millisecond
				wg.Go(func() {
					ctx := middleware.WithTeam(context.Background(), team)
					for range 40 {
						tk, err := l.Reserve(ctx, "m", team, 0)
						if err == nil {
							mu.Lock()
							at[team] = append(at[team], time.Since(start))
							mu.Unlock()
							tk.Done(ctx, -1, 1)
						} else if mode == ratelimit.OnLimitWait {
							t.Errorf("wait mode refused: %v", err)
						}
						time.Sleep(gap)
					}
				})
			}
			wg.Wait()
			all := slices.Concat(at["a"], at["b"])
			iv := time.Minute / time.Duration(rpm)
			check(t, "model", all, iv, burst)
			sum := teams["a"].Weight + teams["b"].Weight
			for name, ts := range teams {
				tiv := time.Duration(float64(time.Minute) / (float64(rpm) * ts.Weight / sum))
				check(t, "team "+name, at[name], tiv, max(burst, tiv))
			}
		})
	}
}

// check verifies the GCRA bound on the admission times ts of a limit of
// one call per iv with tolerance tol: in any window [t, t+w] at most
// (tol + w)/iv + 1 calls.
func check(t *testing.T, name string, ts []time.Duration, iv, tol time.Duration) {
	t.Helper()
	slices.Sort(ts)
	for i := range ts {
		for j := i; j < len(ts); j++ {
			w := ts[j] - ts[i]
			if n, limit := j-i+1, int((tol+w)/iv)+1; n > limit {
				t.Fatalf("%s: %d calls in %v, the limit allows %d (interval %v, tolerance %v)", name, n, w, limit, iv, tol)
			}
		}
	}
}

// A call whose n × max_tokens is beyond the int64 range needs the
// saturated worst case of tokens, never a small need wrapped around: an
// oversized call is admitted on an idle limit (as any call larger than the
// burst is) and runs the limit into debt, so the next call is refused.
func TestHugeChoicesNeverWrapTheTokenNeed(t *testing.T) {
	t.Parallel()
	l, err := ratelimit.New(ratelimit.Config{Models: map[string]ratelimit.ModelLimit{"m": {TPM: 100_000}}, OnLimit: ratelimit.OnLimitReject})
	if err != nil {
		t.Fatal(err)
	}
	h := l.Middleware()(middleware.HandlerFunc(func(context.Context, *middleware.Request) (*middleware.Response, error) {
		return &middleware.Response{}, nil
	}))
	msgs := []middleware.Message{{Role: middleware.RoleUser, Content: "hi"}}
	huge := &middleware.Request{Model: "m", N: 1 << 24, MaxTokens: 1 << 40, Messages: msgs} // 2^64 output tokens: 0 once wrapped
	_, _ = h.Handle(context.Background(), huge)
	if _, err := h.Handle(context.Background(), &middleware.Request{Model: "m", MaxTokens: 10, Messages: msgs}); err == nil {
		t.Fatal("a call after one of 2^64 tokens was admitted: the limit's debt wrapped around")
	}
}
