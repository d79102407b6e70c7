package budget_test

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/llmwrap/instrument"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
	"github.com/tokenwise/tokenwise/policies"
	"github.com/tokenwise/tokenwise/tokens"
)

var est = tokens.New()

// echo answers with the exact estimated input and min(max_tokens, out)
// output tokens, like a provider that honours max_tokens.
func echo(out int64) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		o := out
		if req.MaxTokens > 0 && int64(req.MaxTokens) < o {
			o = int64(req.MaxTokens)
		}
		return &middleware.Response{Model: req.Model, Message: middleware.Message{Role: middleware.RoleAssistant, Content: "ok"},
			FinishReason: "stop", Usage: middleware.Usage{InputTokens: est.Request(req.Model, req), OutputTokens: o}}, nil
	})
}

func request(model string) *middleware.Request {
	return &middleware.Request{Model: model, Messages: []middleware.Message{{Role: middleware.RoleUser, Content: "Check the disk."}}}
}

// reqTokens is the estimate of request(model).
func reqTokens(model string) int64 { return est.Request(model, request(model)) }

type recorder struct{ middlewaretest.Recorder }

func (r *recorder) warnings() []middleware.BudgetWarning {
	return middlewaretest.Of[middleware.BudgetWarning](&r.Recorder)
}

func chain(t *testing.T, p *policies.Policy, next middleware.Handler, opts ...budget.Option) (*budget.Budget, middleware.Handler) {
	t.Helper()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	b, err := newBudget(p, append([]budget.Option{budget.WithLogger(slog.New(slog.DiscardHandler))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return b, middleware.Then(next, instrument.New(nil, nil), b.Middleware(), middleware.Meter(llmwrap.Pricer(p), budget.BilledUsage(est)))
}

func teamPolicy(tb policies.TeamBudget) *policies.Policy {
	return &policies.Policy{Version: 1, Name: "devops", Budget: policies.Budget{
		Request: policies.RequestBudget{MaxOutputTokens: 100}, Team: tb}}
}

// pinGPT4o prices gpt-4o in p itself, at the catalog's figures: its
// answers are billed, and so its calls reserved, at that price alone,
// not at that of a dearer snapshot the provider may name
// (policies.Policy.AnswerModels: gpt-4o-2024-05-13), so that a limit of
// one call at gpt-4o's price admits one.
func pinGPT4o(p *policies.Policy) {
	spec, _ := (*policies.Policy)(nil).Model("gpt-4o")
	p.Models = map[string]policies.ModelSpec{"gpt-4o": spec}
}

func TestRejectIsTyped(t *testing.T) {
	t.Parallel()
	per := reqTokens("gpt-4o") + 100
	_, h := chain(t, teamPolicy(policies.TeamBudget{Period: policies.PeriodDaily, MaxTokens: 2*per + 1}), echo(100))
	ctx := middleware.WithTeam(context.Background(), "sre")
	for i := range 2 {
		if _, err := h.Handle(ctx, request("gpt-4o")); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	_, err := h.Handle(ctx, request("gpt-4o"))
	var e *budget.ExceededError
	if !errors.As(err, &e) || !errors.Is(err, budget.ErrExceeded) || !errors.Is(err, middleware.ErrBudget) {
		t.Fatalf("third call: %v, want *ExceededError matching ErrExceeded and middleware.ErrBudget", err)
	}
	want := budget.ExceededError{Scope: "team:sre", Unit: budget.UnitTokens, Limit: 2*per + 1, Used: 2 * per, Reserved: 0, Need: per, Model: "gpt-4o",
		Output: 100, OutputBound: "budget.request.max_output_tokens", MinOutput: budget.DefaultMinOutputTokens, Affordable: 0}
	if *e != want {
		t.Fatalf("error = %+v\nwant    %+v", *e, want)
	}
}

func TestMaxTokensInjectedAndCapped(t *testing.T) {
	t.Parallel()
	var seen []int
	var mu sync.Mutex
	h0 := middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		mu.Lock()
		seen = append(seen, req.MaxTokens)
		mu.Unlock()
		return echo(10).Handle(ctx, req)
	})
	_, h := chain(t, teamPolicy(policies.TeamBudget{Period: policies.PeriodDaily, MaxTokens: 1_000_000}), h0)
	for _, mt := range []int{0, 500, 50} {
		r := request("gpt-4o")
		r.MaxTokens = mt
		if _, err := h.Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if r.MaxTokens != mt {
			t.Fatal("the caller's request was mutated")
		}
	}
	if want := []int{100, 100, 50}; !equal(seen, want) {
		t.Fatalf("max_tokens sent = %v, want %v", seen, want)
	}
	// Without a request cap the model's max output is injected.
	p := &policies.Policy{Version: 1, Budget: policies.Budget{Run: policies.RunBudget{MaxTokens: 1_000_000}}}
	seen = nil
	_, h = chain(t, p, h0)
	ctx, _ := middleware.StartRun(context.Background(), "r")
	if _, err := h.Handle(ctx, request("gpt-4o")); err != nil {
		t.Fatal(err)
	}
	if want := []int{16384}; !equal(seen, want) {
		t.Fatalf("max_tokens sent = %v, want %v (gpt-4o's max output)", seen, want)
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestInputCap(t *testing.T) {
	t.Parallel()
	p := &policies.Policy{Version: 1, Budget: policies.Budget{Request: policies.RequestBudget{MaxInputTokens: 20}}}
	_, h := chain(t, p, echo(10))
	if _, err := h.Handle(context.Background(), request("gpt-4o")); err != nil {
		t.Fatalf("small request: %v", err)
	}
	big := request("gpt-4o")
	big.Messages[0].Content = strings.Repeat("disk ", 50)
	_, err := h.Handle(context.Background(), big)
	var e *budget.ExceededError
	if !errors.As(err, &e) || e.Scope != "request" || e.Limit != 20 || e.Need != est.Request("gpt-4o", big) {
		t.Fatalf("big request: %v", err)
	}
}

// The input cap counts a request's tokens only when the bound that costs
// no tokenising (a token a byte) is over it, and decides on the count
// then: a request whose bytes are over the cap and whose tokens are not
// is let through; one token over is refused with the exact count; one far
// below is not counted at all. The context window does the same for the
// caller's max_tokens.
func TestInputCapCountsOnlyWhenTheBoundIsOver(t *testing.T) {
	t.Parallel()
	e := tokens.New()
	req := request("gpt-4o")
	req.Messages[0].Content = strings.Repeat("disk ", 50)
	n := tokens.New(tokens.WithCacheSize(0)).Request("gpt-4o", req)
	bound := e.Bound("gpt-4o", req)
	if bound <= n+100 {
		t.Fatalf("bound %d, count %d: the test needs a bound well above the count", bound, n)
	}
	for _, tc := range []struct {
		cap       int64
		refused   bool
		wantCount bool // whether the call reaches the provider counted
	}{
		{cap: bound, wantCount: false},
		{cap: n + 1, wantCount: true},
		{cap: n, wantCount: true},
		{cap: n - 1, refused: true},
	} {
		p := &policies.Policy{Version: 1, Budget: policies.Budget{Request: policies.RequestBudget{MaxInputTokens: tc.cap}}}
		counted := false
		next := middleware.HandlerFunc(func(ctx context.Context, r *middleware.Request) (*middleware.Response, error) {
			_, counted = tokens.BoundForCall(ctx, e, r.Model, r)
			return echo(10).Handle(ctx, r)
		})
		_, h := chain(t, p, next, budget.WithEstimator(e))
		_, err := h.Handle(context.Background(), req)
		var ex *budget.ExceededError
		switch {
		case tc.refused:
			if !errors.As(err, &ex) || ex.Need != n || ex.Limit != tc.cap {
				t.Fatalf("cap %d (count %d): %v, want refused with need %d", tc.cap, n, err, n)
			}
		case err != nil:
			t.Fatalf("cap %d (count %d, bound %d): %v", tc.cap, n, bound, err)
		case counted != tc.wantCount:
			t.Fatalf("cap %d (count %d, bound %d): counted %v, want %v", tc.cap, n, bound, counted, tc.wantCount)
		}
	}

	// The window: gpt-4o's 128,000 tokens. A caller's max_tokens that
	// leaves room for the bound is sent as is, uncounted; one that leaves
	// room for the count only is sent as is, counted; one over is lowered
	// to what the count leaves.
	p := &policies.Policy{Version: 1, Budget: policies.Budget{Request: policies.RequestBudget{MaxInputTokens: 1 << 30}}}
	for _, tc := range []struct {
		maxTokens, want int
		wantCount       bool
	}{
		{maxTokens: 128000 - int(bound), want: 128000 - int(bound)},
		{maxTokens: 128000 - int(n), want: 128000 - int(n), wantCount: true},
		{maxTokens: 128000 - int(n) + 1, want: 128000 - int(n), wantCount: true},
	} {
		var sent int
		counted := false
		next := middleware.HandlerFunc(func(ctx context.Context, r *middleware.Request) (*middleware.Response, error) {
			_, counted = tokens.BoundForCall(ctx, e, r.Model, r)
			sent = r.MaxTokens
			return echo(10).Handle(ctx, r)
		})
		_, h := chain(t, p, next, budget.WithEstimator(e))
		r := *req
		r.MaxTokens = tc.maxTokens
		if _, err := h.Handle(context.Background(), &r); err != nil {
			t.Fatal(err)
		}
		if sent != tc.want || counted != tc.wantCount {
			t.Fatalf("max_tokens %d (count %d, bound %d): sent %d, counted %v; want %d, %v", tc.maxTokens, n, bound, sent, counted, tc.want, tc.wantCount)
		}
	}
}

// Cost of a call with cached and reasoning tokens, by hand: gpt-4o at
// $2.50 input, $1.25 cached input, $10 output per 1M tokens.
// 10,000 input of which 4,000 cached, 2,000 output of which 500 reasoning:
// 6,000×2.50 + 4,000×1.25 + 2,000×10 = 15,000 + 5,000 + 20,000 = $0.040000.
func TestCostWithCachedAndReasoningTokens(t *testing.T) {
	t.Parallel()
	u := middleware.Usage{InputTokens: 10_000, CachedInputTokens: 4_000, OutputTokens: 2_000, ReasoningTokens: 500}
	h0 := middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		return &middleware.Response{Model: req.Model, Usage: u}, nil
	})
	p := &policies.Policy{Version: 1, Budget: policies.Budget{Run: policies.RunBudget{MaxUSD: policies.Dollar}}}
	b, h := chain(t, p, h0)
	ctx, run := middleware.StartRun(context.Background(), "r")
	if _, err := h.Handle(ctx, request("gpt-4o")); err != nil {
		t.Fatal(err)
	}
	if got := run.Totals().CostPico; got != 40_000*policies.PicoPerMicro {
		t.Fatalf("cost = %d pico-USD, want 40000 micro-USD exactly", got)
	}
	if bal := b.RunBalance(run); bal.Used.USDMicros != 40_000 || bal.Used.Tokens != 12_000 || !bal.Reserved.IsZero() {
		t.Fatalf("run balance = %+v", bal)
	}
}

func TestReleaseOnErrorAndPanic(t *testing.T) {
	t.Parallel()
	store := budget.NewMemoryStore()
	fail := errors.New("boom")
	mode := "error"
	h0 := middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		switch mode {
		case "panic":
			panic("handler panic")
		}
		return nil, fail
	})
	p := teamPolicy(policies.TeamBudget{Period: policies.PeriodMonthly, MaxUSD: policies.Dollar})
	b, h := chain(t, p, h0, budget.WithStore(store))
	if _, err := h.Handle(context.Background(), request("gpt-4o")); !errors.Is(err, fail) {
		t.Fatalf("err = %v", err)
	}
	// (A cancelled call is charged what the Meter bills it:
	// TestAttemptEndedInFlightIsSettledAsBilled.)
	// The panic unwinds through the budget layer (which releases) up to
	// Instrument, which makes it the call's error.
	mode = "panic"
	if _, err := h.Handle(context.Background(), request("gpt-4o")); !errors.Is(err, middleware.ErrPanic) {
		t.Fatalf("err = %v, want middleware.ErrPanic", err)
	}
	rem, err := b.Remaining(context.Background(), "devops")
	if err != nil {
		t.Fatal(err)
	}
	if !rem.Used.IsZero() || !rem.Reserved.IsZero() || rem.InFlight != 0 || rem.Remaining().USDMicros != 1_000_000 {
		t.Fatalf("after failures: %+v", rem)
	}
}

// TestAttemptEndedInFlightIsSettledAsBilled: a call whose last attempt
// ended without a response after it was sent — cancelled or timed out in
// flight — is billed its estimated input by the Meter (the provider
// usually bills a prompt it processed), and the ledger charges the same,
// not nothing: report and ledger agree.
func TestAttemptEndedInFlightIsSettledAsBilled(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		end  func(cancel context.CancelFunc) error
	}{
		{"cancelled", func(cancel context.CancelFunc) error { cancel(); return context.Canceled }},
		{"timed out", func(context.CancelFunc) error {
			return &middleware.ProviderError{Kind: middleware.ErrTimeout, Err: context.DeadlineExceeded}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var cancel context.CancelFunc
			h0 := middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
				return nil, c.end(cancel)
			})
			p := teamPolicy(policies.TeamBudget{Period: policies.PeriodMonthly, MaxUSD: policies.Dollar})
			b, h := chain(t, p, h0)
			var facts middleware.CallFacts
			ctx, stop := context.WithCancel(middleware.WithObserver(context.Background(), middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
				if f, ok := e.(middleware.CallFinished); ok {
					facts = f.Facts
				}
			})))
			defer stop()
			cancel = stop
			if _, err := h.Handle(ctx, request("gpt-4o")); err == nil {
				t.Fatal("no error")
			}
			if len(facts.Attempts) != 1 || !facts.Attempts[0].Estimated || facts.Attempts[0].Usage.InputTokens == 0 {
				t.Fatalf("attempts %+v: want one billed its estimated input", facts.Attempts)
			}
			rem, err := b.Remaining(context.Background(), "devops")
			if err != nil {
				t.Fatal(err)
			}
			a := facts.Attempts[0]
			if want := policies.PicoUSD(a.CostPico).Ceil().Micro(); rem.Used.USDMicros != want || rem.Used.Tokens != a.Usage.Total() || !rem.Reserved.IsZero() {
				t.Fatalf("ledger %+v; want %d µ$ and %d tokens, what the report bills", rem, want, a.Usage.Total())
			}
		})
	}
}

// A stream cut mid-way returns a partial response with ErrStreamCut and no
// usage: the estimated input and the partial output are billed.
func TestCutStreamIsBilled(t *testing.T) {
	t.Parallel()
	partial := "The disk is 95% full; /var/log holds most of"
	h0 := middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		return &middleware.Response{Model: req.Model, Message: middleware.Message{Role: middleware.RoleAssistant, Content: partial}},
			&middleware.ProviderError{Kind: middleware.ErrStreamCut}
	})
	p := &policies.Policy{Version: 1, Budget: policies.Budget{Run: policies.RunBudget{MaxTokens: 1_000_000}}}
	b, h := chain(t, p, h0)
	ctx, run := middleware.StartRun(context.Background(), "r")
	if _, err := h.Handle(ctx, request("gpt-4o")); !errors.Is(err, middleware.ErrStreamCut) {
		t.Fatal(err)
	}
	want := reqTokens("gpt-4o") + est.Text("gpt-4o", partial)
	if bal := b.RunBalance(run); bal.Used.Tokens != want || !bal.Reserved.IsZero() {
		t.Fatalf("run balance %+v, want %d tokens used", bal, want)
	}
	if run.Totals().CostPico == 0 {
		t.Fatal("the cut stream was not priced")
	}
}

// TestNegativeUsageIsBilledTheEstimate: a response whose usage has a
// negative count (a custom provider handler, a broken server) is billed as
// one without usage — the estimated input and the answer's tokens — by the
// budget and by the Meter: never settled as given, which would take spend
// off the run's ledger and the run's cost.
func TestNegativeUsageIsBilledTheEstimate(t *testing.T) {
	t.Parallel()
	const answer = "The disk is fine."
	h0 := middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		return &middleware.Response{Model: req.Model, Message: middleware.Message{Role: middleware.RoleAssistant, Content: answer},
			FinishReason: "stop", Usage: middleware.Usage{InputTokens: -1_000_000, OutputTokens: 5}}, nil
	})
	p := &policies.Policy{Version: 1, Budget: policies.Budget{Run: policies.RunBudget{MaxTokens: 1_000_000}}}
	b, h := chain(t, p, h0)
	ctx, run := middleware.StartRun(context.Background(), "r")
	if _, err := h.Handle(ctx, request("gpt-4o")); err != nil {
		t.Fatal(err)
	}
	want := reqTokens("gpt-4o") + est.Text("gpt-4o", answer)
	if bal := b.RunBalance(run); bal.Used.Tokens != want || !bal.Reserved.IsZero() {
		t.Fatalf("run balance %+v, want the estimate's %d tokens used", bal, want)
	}
	if tot := run.Totals(); tot.CostPico <= 0 || tot.ByModel["gpt-4o"].Usage.Negative() || tot.ByModel["gpt-4o"].Usage.IsZero() {
		t.Fatalf("the run's cost %d, billed usage %+v: want the estimate priced", tot.CostPico, tot.ByModel["gpt-4o"].Usage)
	}
}

// TestAbsurdUsageNeverWrapsTheLedger: a server that reports an absurd
// count (near the int64 range, beyond middleware.MaxCount) is no
// provider's count: the call is billed as one without usage (the
// estimate: the request's tokens and the answer's), as one with a negative
// count is; the ledger never wraps around to a negative spend, nor is the
// team's budget spent on one call (before, it settled 2^50 tokens and the
// next call was refused); the run's totals are the estimate's.
func TestAbsurdUsageNeverWrapsTheLedger(t *testing.T) {
	t.Parallel()
	h0 := middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		return &middleware.Response{Model: req.Model, Message: middleware.Message{Role: middleware.RoleAssistant, Content: "ok"},
			FinishReason: "stop", Usage: middleware.Usage{InputTokens: math.MaxInt64 - 5, OutputTokens: 100}}, nil
	})
	b, h := chain(t, teamPolicy(policies.TeamBudget{Period: policies.PeriodDaily, MaxTokens: 1_000_000}), h0)
	ctx, run := middleware.StartRun(middleware.WithTeam(context.Background(), "sre"), "r")
	if _, err := h.Handle(ctx, request("gpt-4o")); err != nil {
		t.Fatal(err)
	}
	want := reqTokens("gpt-4o") + est.Text("gpt-4o", "ok")
	bal, err := b.Remaining(ctx, b.Team(ctx))
	if err != nil || bal.Used.Tokens != want || bal.Used.USDMicros <= 0 || !bal.Reserved.IsZero() {
		t.Fatalf("after an absurd usage: %+v (%v), want the estimate's %d tokens used", bal, err, want)
	}
	if _, err := h.Handle(ctx, request("gpt-4o")); err != nil {
		t.Fatalf("the next call: %v, want it served: one call's absurd count does not spend the budget", err)
	}
	if tot := run.Totals(); tot.Usage.Total() != 2*want || tot.CostPico <= 0 {
		t.Fatalf("the run's totals: %d tokens, %d pico, want the estimates' %d tokens, never negative", tot.Usage.Total(), tot.CostPico, 2*want)
	}
}

// TestHugeChoicesNeverWrapTheReservation: n × max_tokens beyond the int64
// range (a model without a context window bounds max_tokens only by the
// request) reserves the saturated worst case, which no budget affords: the
// call is refused before the provider, never reserved as a small need.
func TestHugeChoicesNeverWrapTheReservation(t *testing.T) {
	t.Parallel()
	called := false
	h0 := middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		called = true
		return echo(10).Handle(ctx, req)
	})
	_, h := chain(t, &policies.Policy{Version: 1, Budget: policies.Budget{Team: policies.TeamBudget{Period: policies.PeriodDaily, MaxTokens: 1_000_000}}}, h0)
	req := request("my-llama")
	req.N, req.MaxTokens = 1<<24, 1<<40 // 2^64 output tokens: 0 once wrapped
	if _, err := h.Handle(middleware.WithTeam(context.Background(), "sre"), req); !errors.Is(err, budget.ErrExceeded) || called {
		t.Fatalf("n = 2^24 × max_tokens = 2^40: %v, provider called %v; want refused before the provider", err, called)
	}
}

func TestUnpricedModelRefusedAtRuntime(t *testing.T) {
	t.Parallel()
	p := &policies.Policy{Version: 1, Budget: policies.Budget{Run: policies.RunBudget{MaxUSD: policies.Dollar}}}
	_, h := chain(t, p, echo(10))
	ctx, _ := middleware.StartRun(context.Background(), "r")
	_, err := h.Handle(ctx, request("my-llama"))
	if !errors.Is(err, budget.ErrUnpriced) || !errors.Is(err, middleware.ErrBudget) {
		t.Fatalf("err = %v, want ErrUnpriced", err)
	}
}

// A policy with a USD budget and an unpriced model fails to load.
func TestUSDBudgetWithUnpricedModelFailsToLoad(t *testing.T) {
	t.Parallel()
	_, err := policies.LoadBytes([]byte("version: 1\nmodels:\n  my-llama: {provider: local}\nrouting: {default: my-llama}\nbudget:\n  team: {period: daily, max_usd: 5}\n"), "team.yaml")
	if err == nil || !strings.Contains(err.Error(), `budget.team.max_usd is set but model "my-llama" has no price`) {
		t.Fatalf("err = %v", err)
	}
}

func TestRunBudget(t *testing.T) {
	t.Parallel()
	per := reqTokens("gpt-4o") + 100
	p := &policies.Policy{Version: 1, Budget: policies.Budget{Request: policies.RequestBudget{MaxOutputTokens: 100},
		Run: policies.RunBudget{MaxTokens: 3 * per}}}
	_, h := chain(t, p, echo(100))
	ctx, _ := middleware.StartRun(context.Background(), "r1")
	for range 3 {
		if _, err := h.Handle(ctx, request("gpt-4o")); err != nil {
			t.Fatal(err)
		}
	}
	var e *budget.ExceededError
	if _, err := h.Handle(ctx, request("gpt-4o")); !errors.As(err, &e) || e.Scope != "run" {
		t.Fatalf("4th call: %v", err)
	}
	ctx2, _ := middleware.StartRun(context.Background(), "r2")
	if _, err := h.Handle(ctx2, request("gpt-4o")); err != nil {
		t.Fatalf("another run: %v", err)
	}
}

// Downgrade then reject, in fake time: gpt-4o's worst case no longer fits,
// gpt-4o-mini's does until it does not either.
func TestDowngradeThenReject(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		cost := func(model string) int64 {
			s, _ := (&policies.Policy{Version: 1}).Model(model)
			return s.Cost(policies.TokenCounts{Input: reqTokens(model), Output: 100}).Ceil().Micro()
		}
		p := teamPolicy(policies.TeamBudget{Period: policies.PeriodDaily, MaxUSD: policies.MicroUSD(cost("gpt-4o") + 2*cost("gpt-4o-mini"))})
		p.Budget.OnExceed = policies.OnExceedDowngrade
		p.Budget.DowngradeTo = "gpt-4o-mini"
		pinGPT4o(p)
		rec := &recorder{}
		var models []string
		var mu sync.Mutex
		h0 := middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			mu.Lock()
			models = append(models, req.Model)
			mu.Unlock()
			return echo(100).Handle(ctx, req)
		})
		_, h := chain(t, p, h0)
		ctx := middleware.WithObserver(context.Background(), rec)
		for range 3 {
			if _, err := h.Handle(ctx, request("gpt-4o")); err != nil {
				t.Fatalf("calls %v: %v", models, err)
			}
		}
		_, err := h.Handle(ctx, request("gpt-4o"))
		var e *budget.ExceededError
		if !errors.As(err, &e) || e.Model != "gpt-4o-mini" || !errors.As(e.Err, new(*budget.ExceededError)) {
			t.Fatalf("4th call: %v", err)
		}
		if want := []string{"gpt-4o", "gpt-4o-mini", "gpt-4o-mini"}; strings.Join(models, ",") != strings.Join(want, ",") {
			t.Fatalf("models called %v, want %v", models, want)
		}
		// Next day the strong model fits again.
		time.Sleep(24 * time.Hour) // fake time: the bubble's clock jumps
		if _, err := h.Handle(ctx, request("gpt-4o")); err != nil || models[len(models)-1] != "gpt-4o" {
			t.Fatalf("after roll-over: %v, %v", err, models)
		}
	})
}

func TestWindowRollOver(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		period  policies.Period
		window  time.Duration
		advance time.Duration // from 2000-01-01 00:00 UTC, the bubble's epoch
		stay    time.Duration // still in the same window
	}{
		{policies.PeriodDaily, 0, 24 * time.Hour, 23*time.Hour + 59*time.Minute},
		{policies.PeriodMonthly, 0, 31 * 24 * time.Hour, 30 * 24 * time.Hour},
		{policies.PeriodRolling, time.Hour, time.Hour + time.Minute, 30 * time.Minute},
	} {
		t.Run(string(tc.period), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				if now := time.Now().UTC(); now.Hour() != 0 || now.Day() != 1 {
					t.Fatalf("bubble epoch %v", now)
				}
				per := reqTokens("gpt-4o") + 100
				b, h := chain(t, teamPolicy(policies.TeamBudget{Period: tc.period, Window: policies.Duration(tc.window), MaxTokens: per}), echo(100))
				ctx := context.Background()
				if _, err := h.Handle(ctx, request("gpt-4o")); err != nil {
					t.Fatal(err)
				}
				time.Sleep(tc.stay)
				if _, err := h.Handle(ctx, request("gpt-4o")); !errors.Is(err, budget.ErrExceeded) {
					t.Fatalf("same window: %v", err)
				}
				time.Sleep(tc.advance - tc.stay)
				if _, err := h.Handle(ctx, request("gpt-4o")); err != nil {
					t.Fatalf("next window: %v", err)
				}
				rem, _ := b.Remaining(ctx, "devops")
				if rem.Used.Tokens != per || rem.Remaining().Tokens != 0 {
					t.Fatalf("remaining %+v", rem)
				}
			})
		})
	}
}

func TestSoftLimitEventsFireOncePerWindow(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		per := reqTokens("gpt-4o") + 100
		p := teamPolicy(policies.TeamBudget{Period: policies.PeriodDaily, MaxTokens: 10 * per})
		p.Budget.WarnAt = []float64{0.5, 0.8, 1.0}
		rec := &recorder{}
		_, h := chain(t, p, echo(100))
		ctx := middleware.WithObserver(context.Background(), rec)
		for range 10 {
			if _, err := h.Handle(ctx, request("gpt-4o")); err != nil {
				t.Fatal(err)
			}
		}
		var got []float64
		for _, w := range rec.warnings() {
			if w.Unit != budget.UnitTokens || w.Scope != "team:devops" || w.Limit != 10*per {
				t.Fatalf("warning %+v", w)
			}
			got = append(got, w.Fraction)
		}
		if len(got) != 3 || got[0] != 0.5 || got[1] != 0.8 || got[2] != 1.0 {
			t.Fatalf("warnings %v, want [0.5 0.8 1]", got)
		}
		time.Sleep(24 * time.Hour)
		for range 5 {
			if _, err := h.Handle(ctx, request("gpt-4o")); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(rec.warnings()); n != 4 {
			t.Fatalf("after roll-over %d warnings, want 4 (0.5 again)", n)
		}
	})
}

func TestWarnModeLetsThroughAndRecords(t *testing.T) {
	t.Parallel()
	per := reqTokens("gpt-4o") + 100
	p := teamPolicy(policies.TeamBudget{Period: policies.PeriodDaily, MaxTokens: per})
	p.Budget.OnExceed = policies.OnExceedWarn
	rec := &recorder{}
	b, h := chain(t, p, echo(100))
	ctx := middleware.WithObserver(context.Background(), rec)
	for range 2 {
		if _, err := h.Handle(ctx, request("gpt-4o")); err != nil {
			t.Fatal(err)
		}
	}
	rem, _ := b.Remaining(ctx, "devops")
	if rem.Used.Tokens != 2*per {
		t.Fatalf("used %d, want %d", rem.Used.Tokens, 2*per)
	}
	n := 0
	for _, e := range rec.Events() {
		if x, ok := e.(middleware.BudgetExceeded); ok && x.Action == "warn" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d warn events, want 1", n)
	}
}

type downStore struct{ budget.MemoryStore }

func (*downStore) Reserve(context.Context, budget.Reservation) (budget.Hold, error) {
	return nil, errors.New("connection refused")
}

func TestStoreUnavailable(t *testing.T) {
	t.Parallel()
	per := reqTokens("gpt-4o") + 100
	p := teamPolicy(policies.TeamBudget{Period: policies.PeriodDaily, MaxTokens: 20 * per})
	_, h := chain(t, p, echo(100), budget.WithStore(&downStore{}))
	if _, err := h.Handle(context.Background(), request("gpt-4o")); !errors.Is(err, budget.ErrStoreUnavailable) || !errors.Is(err, middleware.ErrBudget) {
		t.Fatalf("fail_closed: %v", err)
	}
	p.Budget.Store = policies.BudgetStore{OnUnavailable: policies.UnavailableLocal, LocalFraction: 0.1}
	_, h = chain(t, p, echo(100), budget.WithStore(&downStore{}))
	for i := range 2 {
		if _, err := h.Handle(context.Background(), request("gpt-4o")); err != nil {
			t.Fatalf("local call %d: %v", i, err)
		}
	}
	if _, err := h.Handle(context.Background(), request("gpt-4o")); !errors.Is(err, budget.ErrExceeded) {
		t.Fatalf("beyond the local share (2 calls): %v", err)
	}
}

// Below the floor but above zero: refused, not fitted to a useless answer.
func TestFitStopsAtTheFloor(t *testing.T) {
	t.Parallel()
	p := &policies.Policy{Version: 1, Budget: policies.Budget{Run: policies.RunBudget{MaxUSD: policies.MicroUSD(2_000)}}}
	h0 := echo(10)
	b, h := chain(t, p, h0)
	ctx, run := middleware.StartRun(context.Background(), "floor")
	_, err := h.Handle(ctx, request("gpt-4o")) // $0.002 affords ~190 gpt-4o output tokens < 256
	if !errors.Is(err, budget.ErrExceeded) {
		t.Fatalf("err = %v, want a refusal below the 256-token floor", err)
	}
	if bal := b.RunBalance(run); !bal.Used.IsZero() || !bal.Reserved.IsZero() {
		t.Fatalf("balance %+v", bal)
	}
}

// Reserve holds a call made outside the chain in the run's and the team's
// ledgers as the layer holds a chat call: a refusal names its scope and
// takes nothing, a team refusal releases the run's hold, Settle charges
// both ledgers once, and on_exceed warn lets the call through, recorded.
func TestReserveOutsideTheChain(t *testing.T) {
	t.Parallel()
	p := teamPolicy(policies.TeamBudget{Period: policies.PeriodDaily, MaxTokens: 1000})
	p.Budget.Run = policies.RunBudget{MaxTokens: 600}
	b, _ := chain(t, p, echo(100))
	ctx := middleware.WithTeam(context.Background(), "devops")
	ctx, run := middleware.StartRun(ctx, "r1")
	h, err := b.Reserve(ctx, budget.Amount{Tokens: 500})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Reserve(ctx, budget.Amount{Tokens: 200}); !errors.Is(err, budget.ErrExceeded) {
		t.Fatalf("past the run's 600 with 500 held: %v", err)
	} else if e, _ := errors.AsType[*budget.ExceededError](err); e.Scope != "run" {
		t.Fatalf("scope %q, want run", e.Scope)
	}
	h.Settle(ctx, budget.Amount{Tokens: 450})
	h.Settle(ctx, budget.Amount{Tokens: 450}) // once
	if bal := b.RunBalance(run); bal.Used.Tokens != 450 || bal.Reserved.Tokens != 0 {
		t.Fatalf("run ledger %+v, want 450 used, nothing held", bal)
	}
	// Another run: its own 600 would fit 560, the team's 1000 (450 spent)
	// refuses it, and the run's hold is released with the refusal.
	ctx2, run2 := middleware.StartRun(middleware.WithTeam(context.Background(), "devops"), "r2")
	if _, err := b.Reserve(ctx2, budget.Amount{Tokens: 560}); !errors.Is(err, budget.ErrExceeded) {
		t.Fatalf("past the team's 1000: %v", err)
	} else if e, _ := errors.AsType[*budget.ExceededError](err); e.Scope != "team:devops" {
		t.Fatalf("scope %q, want team:devops", e.Scope)
	}
	if bal := b.RunBalance(run2); bal.Reserved.Tokens != 0 || bal.Used.Tokens != 0 {
		t.Fatalf("run r2 after the team's refusal: %+v, want nothing held", bal)
	}
	// on_exceed warn: let through and recorded.
	p.Budget.OnExceed = policies.OnExceedWarn
	w, _ := chain(t, p, echo(100))
	ctx3, _ := middleware.StartRun(middleware.WithTeam(context.Background(), "devops"), "r3")
	h3, err := w.Reserve(ctx3, budget.Amount{Tokens: 2000})
	if err != nil {
		t.Fatalf("warn: %v", err)
	}
	h3.Settle(ctx3, budget.Amount{Tokens: 1500})
	if rem, _ := w.Remaining(ctx3, "devops"); rem.Used.Tokens != 1500 {
		t.Fatalf("warn: the team ledger used %d, want 1500", rem.Used.Tokens)
	}
}

// A call whose endpoint serves one model (middleware.WithFixedModel) is
// refused when its model does not fit, never downgraded to another model
// its endpoint would not serve.
func TestFixedModelIsRefusedNotDowngraded(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		cost := func(model string) int64 {
			s, _ := (&policies.Policy{Version: 1}).Model(model)
			return s.Cost(policies.TokenCounts{Input: reqTokens(model), Output: 100}).Ceil().Micro()
		}
		p := teamPolicy(policies.TeamBudget{Period: policies.PeriodDaily, MaxUSD: policies.MicroUSD(cost("gpt-4o") + 2*cost("gpt-4o-mini"))})
		p.Budget.OnExceed = policies.OnExceedDowngrade
		p.Budget.DowngradeTo = "gpt-4o-mini"
		pinGPT4o(p)
		var models []string
		var mu sync.Mutex
		h0 := middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			mu.Lock()
			models = append(models, req.Model)
			mu.Unlock()
			return echo(100).Handle(ctx, req)
		})
		_, h := chain(t, p, h0)
		ctx := middleware.WithFixedModel(context.Background())
		if _, err := h.Handle(ctx, request("gpt-4o")); err != nil {
			t.Fatal(err)
		}
		_, err := h.Handle(ctx, request("gpt-4o"))
		var e *budget.ExceededError
		if !errors.As(err, &e) || e.Model != "gpt-4o" {
			t.Fatalf("2nd call of a fixed gpt-4o: %v, want its refusal", err)
		}
		if want := []string{"gpt-4o"}; strings.Join(models, ",") != strings.Join(want, ",") {
			t.Fatalf("models called %v, want %v", models, want)
		}
	})
}
