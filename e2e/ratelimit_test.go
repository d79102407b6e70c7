package e2e

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/ratelimit"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
	"github.com/tokenwise/tokenwise/policies"
)

// A tokens-per-minute limit reserves the input estimate plus the output
// reserve and settles with the provider's usage: calls that use 20 tokens
// against a 6,000 tpm limit run at 300 a minute although each reserves
// over 1,000 tokens; without usage to settle with, the reservation stands
// and only about 6 a minute run.
func TestTokensPerMinuteSettledWithUsage(t *testing.T) {
	for _, tc := range []struct {
		name     string
		usage    *openaitest.Usage
		min, max int
	}{
		{"settled with 20 tokens", &openaitest.Usage{PromptTokens: 12, CompletionTokens: 8}, 290, 301},
		{"no usage reported", &openaitest.Usage{}, 6, 7},
		{"usage above the reserve slows down", &openaitest.Usage{PromptTokens: 12, CompletionTokens: 2988}, 2, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := openaitest.New()
				srv.Default(openaitest.Reply{Content: "ok", Usage: tc.usage})
				chain := build(policy(policies.RateLimits{
					Models: map[string]policies.ModelRateLimit{"gpt-4o": {TPM: 6000}}, MaxWait: policies.Duration(time.Minute),
				}), nil)
				c := rlClient(srv, chain)
				start := time.Now()
				n := 0
				for time.Since(start) < time.Minute {
					if _, err := rlAsk(context.Background(), c, "gpt-4o", "How full is /var?"); err != nil {
						t.Fatal(err)
					}
					n++
				}
				// The last call may start just before the minute ends.
				if n < tc.min || n > tc.max+1 {
					t.Errorf("%d calls in a minute, want %d..%d", n, tc.min, tc.max)
				}
				t.Logf("%d calls in %s", n, time.Since(start))
			})
		})
	}
}

// At most max_concurrent calls of a model are in flight; with on_limit
// wait the others queue, with reject they are refused at once.
func TestConcurrencyCap(t *testing.T) {
	for _, mode := range []policies.OnLimit{policies.OnLimitWait, policies.OnLimitReject} {
		t.Run(string(mode), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := openaitest.New()
				srv.Default(openaitest.Reply{Content: "ok", Latency: time.Second})
				prov := &inflight{h: srv}
				rec := &middlewaretest.Recorder{}
				chain := build(policy(policies.RateLimits{
					Models:  map[string]policies.ModelRateLimit{"gpt-4o": {MaxConcurrent: 3}},
					OnLimit: mode,
				}), rec)
				c := rlClient(prov, chain)
				var ok, refused atomic.Int64
				var wg sync.WaitGroup
				for range 10 {
					wg.Go(func() {
						_, err := rlAsk(context.Background(), c, "gpt-4o", "restart nginx")
						switch {
						case err == nil:
							ok.Add(1)
						case errors.Is(err, middleware.ErrRateLimited) && errors.Is(err, ratelimit.ErrRejected):
							refused.Add(1)
						default:
							t.Errorf("unexpected error: %v", err)
						}
					})
				}
				wg.Wait()
				if top := prov.top.Load(); top != 3 {
					t.Errorf("%d calls in flight at most, want 3", top)
				}
				want := int64(10)
				if mode == policies.OnLimitReject {
					want = 3
				}
				if ok.Load() != want || ok.Load()+refused.Load() != 10 {
					t.Errorf("ok %d, refused %d; want %d ok", ok.Load(), refused.Load(), want)
				}
				for _, e := range middlewaretest.Of[middleware.RateLimited](rec) {
					if e.Action != "admitted" && e.Limit != "concurrency" {
						t.Errorf("refusal names limit %q, want concurrency", e.Limit)
					}
				}
			})
		})
	}
}

// A call waits for its slot only when the slot comes before the call's
// deadline and within max_wait; otherwise it is refused at once, with the
// time to wait, and a call cancelled while waiting gives its slot back.
func TestWaitIsBoundedByTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		srv.Default(openaitest.Text("ok"))
		rec := &middlewaretest.Recorder{}
		// 60 rpm with 1s of burst: one call a second.
		chain := build(policy(policies.RateLimits{
			Models:  map[string]policies.ModelRateLimit{"gpt-4o": {RPM: 60}},
			MaxWait: policies.Duration(10 * time.Second),
		}), rec)
		c := rlClient(srv, chain)
		ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
		defer cancel()
		start := time.Now()
		type result struct {
			at  time.Duration
			err error
		}
		results := make(chan result, 5)
		for range 5 {
			go func() {
				_, err := rlAsk(ctx, c, "gpt-4o", "status?")
				results <- result{time.Since(start), err}
			}()
		}
		var admitted []time.Duration
		for range 5 {
			r := <-results
			if r.err == nil {
				admitted = append(admitted, r.at)
				continue
			}
			if !errors.Is(r.err, middleware.ErrRateLimited) {
				t.Fatalf("refusal %v does not match middleware.ErrRateLimited", r.err)
			}
			ra, ok := middleware.RetryAfter(r.err)
			if !ok || ra < time.Second {
				t.Errorf("refusal carries retry after %v (%v), want at least 1s", ra, ok)
			}
			if r.at != 0 {
				t.Errorf("refused after %v, want at once (the slot is after the deadline)", r.at)
			}
		}
		if len(admitted) != 3 {
			t.Fatalf("admitted at %v, want 3 calls (at 0s, 1s, 2s)", admitted)
		}
		for _, at := range admitted {
			if at != at.Truncate(time.Second) || at > 2*time.Second {
				t.Errorf("admitted at %v, want on a whole second before the 2.5s deadline", at)
			}
		}
		var waits int
		for _, e := range middlewaretest.Of[middleware.RateLimited](rec) {
			if e.Action == "admitted" && e.Wait > 0 {
				waits++
			}
		}
		if waits != 2 {
			t.Errorf("%d admitted-after-a-wait events, want 2", waits)
		}

		// max_wait bounds a wait without a deadline; a cancelled wait frees
		// its slot for the next caller.
		time.Sleep(time.Minute)
		ctx2, cancel2 := context.WithCancel(context.Background())
		if _, err := rlAsk(ctx2, c, "gpt-4o", "first"); err != nil {
			t.Fatal(err)
		}
		done := make(chan error)
		go func() { _, err := rlAsk(ctx2, c, "gpt-4o", "second"); done <- err }()
		time.Sleep(500 * time.Millisecond)
		cancel2()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled wait: %v", err)
		}
		t0 := time.Now()
		if _, err := rlAsk(context.Background(), c, "gpt-4o", "third"); err != nil {
			t.Fatal(err)
		}
		if w := time.Since(t0); w != 500*time.Millisecond {
			t.Errorf("third call waited %v, want 500ms (the cancelled call's slot)", w)
		}
	})
}

// Two teams with equal weights share a model's 600 rpm: the greedy one (8
// callers) gets no more than its half, the modest one (1 caller) gets its
// half, each within 10 %.
func TestTeamSharesAreFair(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		srv.Default(openaitest.Text("ok"))
		chain := build(policy(policies.RateLimits{
			Models: map[string]policies.ModelRateLimit{"gpt-4o": {RPM: 600}},
			Teams:  map[string]policies.TeamShare{"search": {Weight: 1}, "billing": {Weight: 1}},
		}), nil)
		c := rlClient(srv, chain)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var greedy, modest atomic.Int64
		var wg sync.WaitGroup
		run := func(team string, n *atomic.Int64) {
			tctx := middleware.WithTeam(ctx, team)
			for {
				if _, err := rlAsk(tctx, c, "gpt-4o", "query"); err != nil {
					return
				}
				n.Add(1)
			}
		}
		for range 8 {
			wg.Go(func() { run("search", &greedy) })
		}
		wg.Go(func() { run("billing", &modest) })
		wg.Wait()
		for name, n := range map[string]int64{"greedy": greedy.Load(), "modest": modest.Load()} {
			if n < 270 || n > 330 {
				t.Errorf("%s team: %d calls in a minute, want its share 300 ± 10 %%", name, n)
			}
		}
		t.Logf("greedy %d, modest %d", greedy.Load(), modest.Load())
	})
}

// The provider says its limit is nearly spent (someone else used it):
// admissions slow down to what the headers leave, before a 429. With
// learn_from_provider off, the same calls run into 429s. A 429's
// Retry-After pauses the other replicas sharing the store.
func TestProviderHeadersSlowAdmissions(t *testing.T) {
	for _, learn := range []bool{true, false} {
		name := map[bool]string{true: "learning", false: "not learning"}[learn]
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// The provider allows 60 a minute, of which 55 are used.
				prov := newLimitedProvider(60, 55)
				rl := policies.RateLimits{Models: map[string]policies.ModelRateLimit{"gpt-4o": {RPM: 600}}, LearnFromProvider: &learn}
				c := rlClient(prov, build(policy(rl), nil))
				start := time.Now()
				var failed int
				for range 20 {
					if _, err := rlAsk(context.Background(), c, "gpt-4o", "ping"); err != nil {
						if !providerRefused(err) {
							t.Fatal(err)
						}
						failed++
					}
				}
				ok, denied := prov.counts()
				t.Logf("%s: %d ok, %d 429s in %s", name, ok, denied, time.Since(start))
				if learn && (denied != 0 || ok != 20) {
					t.Errorf("learning: %d ok, %d 429s; want 20 ok and no 429", ok, denied)
				}
				if !learn && denied == 0 {
					t.Errorf("not learning: no 429: the test does not exercise the provider's limit")
				}
			})
		})
	}
	t.Run("retry-after shared", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv := openaitest.New()
			srv.On(openaitest.LastContains("first")).Reply(openaitest.RateLimited(3 * time.Second))
			srv.Default(openaitest.Text("ok"))
			store := ratelimit.NewMemoryStore()
			rl := policies.RateLimits{Models: map[string]policies.ModelRateLimit{"gpt-4o": {RPM: 600}}, OnLimit: policies.OnLimitReject}
			a := rlClient(srv, build(policy(rl), nil, llmwrap.WithRateLimitStore(store)))
			b := rlClient(srv, build(policy(rl), nil, llmwrap.WithRateLimitStore(store)))
			if _, err := rlAsk(context.Background(), a, "gpt-4o", "first"); !providerRefused(err) {
				t.Fatalf("first call: %v, want the provider's 429", err)
			}
			_, err := rlAsk(context.Background(), b, "gpt-4o", "second")
			var rle *ratelimit.Error
			if !errors.As(err, &rle) || rle.Limit != "provider" || rle.RetryAfter != 3*time.Second {
				t.Fatalf("other replica: %v, want a refusal before the provider with 3s to wait", err)
			}
			if srv.Count() != 1 {
				t.Errorf("provider saw %d requests, want 1", srv.Count())
			}
			time.Sleep(3 * time.Second)
			if _, err := rlAsk(context.Background(), b, "gpt-4o", "third"); err != nil {
				t.Fatalf("after the pause: %v", err)
			}
		})
	})
}

// A provider (or a proxy in front of it) that answers a 429 with a Retry-After
// of hours must not stop every replica's calls to the model for hours: the
// shared pause is at most a minute, after which one call probes the provider
// again (a 429 costs nothing and pauses again).
func TestLongRetryAfterPausesAtMostAMinute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		srv.On(openaitest.LastContains("first")).Reply(openaitest.RateLimited(24 * time.Hour))
		srv.Default(openaitest.Text("ok"))
		store := ratelimit.NewMemoryStore()
		rl := policies.RateLimits{Models: map[string]policies.ModelRateLimit{"gpt-4o": {RPM: 600}}, OnLimit: policies.OnLimitReject}
		a := rlClient(srv, build(policy(rl), nil, llmwrap.WithRateLimitStore(store)))
		b := rlClient(srv, build(policy(rl), nil, llmwrap.WithRateLimitStore(store)))
		if _, err := rlAsk(context.Background(), a, "gpt-4o", "first"); !providerRefused(err) {
			t.Fatalf("first call: %v, want the provider's 429", err)
		}
		_, err := rlAsk(context.Background(), b, "gpt-4o", "second")
		var rle *ratelimit.Error
		if !errors.As(err, &rle) || rle.Limit != "provider" {
			t.Fatalf("other replica: %v, want a refusal before the provider", err)
		}
		if rle.RetryAfter <= 0 || rle.RetryAfter > time.Minute {
			t.Errorf("refusal asks to wait %s, want at most a minute", rle.RetryAfter)
		}
		time.Sleep(time.Minute)
		if _, err := rlAsk(context.Background(), b, "gpt-4o", "third"); err != nil {
			t.Fatalf("a minute after a 429 asking for a day: %v, want the call to reach the provider again", err)
		}
	})
}

// on_limit fallback moves a refused call on to the next model, admitted
// against that model's own limits; reject never falls back.
func TestOnLimitFallbackAndReject(t *testing.T) {
	for _, mode := range []policies.OnLimit{policies.OnLimitFallback, policies.OnLimitReject} {
		t.Run(string(mode), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := openaitest.New()
				srv.Default(openaitest.Text("ok"))
				p := policy(policies.RateLimits{
					Models:  map[string]policies.ModelRateLimit{"gpt-4o": {RPM: 60}, "gpt-4o-mini": {RPM: 60}},
					OnLimit: mode,
				})
				p.Fallback.Models = []string{"gpt-4o-mini"}
				ctx, run := middleware.StartRun(context.Background(), "r")
				c := rlClient(srv, build(p, nil))
				var errs int
				for range 3 {
					if _, err := rlAsk(ctx, c, "gpt-4o", "hello"); err != nil {
						errs++
						if !errors.Is(err, middleware.ErrRateLimited) {
							t.Errorf("error %v", err)
						}
					}
				}
				var models []string
				for _, r := range srv.Requests() {
					models = append(models, r.Chat.Model)
				}
				tot := run.Totals()
				if tot.RateWaits != 0 || tot.RateWait != 0 {
					t.Errorf("run report: %d calls waited %v; nothing waits with %s", tot.RateWaits, tot.RateWait, mode)
				}
				switch mode {
				case policies.OnLimitFallback:
					// 1 on gpt-4o, 1 on gpt-4o-mini, then both are at their limit.
					if len(models) != 2 || models[0] != "gpt-4o" || models[1] != "gpt-4o-mini" || errs != 1 {
						t.Errorf("provider saw %v, %d errors; want [gpt-4o gpt-4o-mini] and 1 error", models, errs)
					}
					if tot.RateRefusals != 3 {
						t.Errorf("run report: %d refusals, want 3", tot.RateRefusals)
					}
				default:
					if len(models) != 1 || errs != 2 {
						t.Errorf("provider saw %v, %d errors; want [gpt-4o] and 2 errors", models, errs)
					}
					if tot.RateRefusals != 2 {
						t.Errorf("run report: %d refusals, want 2", tot.RateRefusals)
					}
				}
			})
		})
	}
}

// A panic below the layer frees the call's concurrency slot.
func TestPanicFreesTheSlot(t *testing.T) {
	l, err := ratelimit.New(ratelimit.Config{
		Models:  map[string]ratelimit.ModelLimit{"gpt-4o": {MaxConcurrent: 1}},
		OnLimit: ratelimit.OnLimitReject,
	})
	if err != nil {
		t.Fatal(err)
	}
	boom := middleware.HandlerFunc(func(context.Context, *middleware.Request) (*middleware.Response, error) { panic("boom") })
	ok := middleware.HandlerFunc(func(_ context.Context, req *middleware.Request) (*middleware.Response, error) {
		return &middleware.Response{Model: req.Model}, nil
	})
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic did not propagate")
			}
		}()
		middleware.Then(boom, l.Middleware()).Handle(context.Background(), &middleware.Request{Model: "gpt-4o"})
	}()
	if _, err := middleware.Then(ok, l.Middleware()).Handle(context.Background(), &middleware.Request{Model: "gpt-4o"}); err != nil {
		t.Fatalf("after a panic: %v, want the slot back", err)
	}
}

// The provider's token limit is learned too, also for a model limited by
// requests only: with no tokens left, the next call waits for the tokens
// it needs (its input estimate plus the output reserve) to come back.
func TestProviderTokenHeadersSlowAdmissions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		srv.Default(openaitest.Reply{Content: "ok", Header: http.Header{
			"X-Ratelimit-Limit-Tokens": {"60000"}, "X-Ratelimit-Remaining-Tokens": {"0"}, "X-Ratelimit-Reset-Tokens": {"1m0s"}}})
		rl := policies.RateLimits{Models: map[string]policies.ModelRateLimit{"gpt-4o": {RPM: 600}},
			OnLimit: policies.OnLimitReject, ReserveOutput: 990}
		c := rlClient(srv, build(policy(rl), nil))
		if _, err := rlAsk(context.Background(), c, "gpt-4o", "one"); err != nil {
			t.Fatal(err)
		}
		_, err := rlAsk(context.Background(), c, "gpt-4o", "two")
		var rle *ratelimit.Error
		if !errors.As(err, &rle) || rle.Limit != "provider tpm" {
			t.Fatalf("second call: %v, want a refusal by the provider's token limit", err)
		}
		// 60,000 tokens a minute is one a millisecond: the call's ~1,000
		// tokens come back in about a second.
		if rle.RetryAfter < 990*time.Millisecond || rle.RetryAfter > 1100*time.Millisecond {
			t.Errorf("retry after %v, want about 1s", rle.RetryAfter)
		}
		time.Sleep(rle.RetryAfter)
		if _, err := rlAsk(context.Background(), c, "gpt-4o", "three"); err != nil {
			t.Fatalf("after the wait: %v", err)
		}
	})
}

// A policy that keeps its rate limits in Redis cannot be built without the
// store: the limits would silently be per process.
func TestRedisKindNeedsTheStore(t *testing.T) {
	p := policy(policies.RateLimits{Models: map[string]policies.ModelRateLimit{"gpt-4o": {RPM: 60}},
		Store: policies.RateLimitStore{Kind: policies.StoreRedis}})
	if _, err := llmwrap.Build(p); err == nil || !strings.Contains(err.Error(), "WithRateLimitStore") {
		t.Fatalf("Build: %v, want an error naming WithRateLimitStore", err)
	}
	if _, err := llmwrap.Build(p, llmwrap.WithRateLimitStore(ratelimit.NewMemoryStore())); err != nil {
		t.Fatalf("Build with a store: %v", err)
	}
}
