package e2e

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap/fallback"
	"github.com/tokenwise/tokenwise/llmwrap/instrument"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
)

var prices = middleware.PricerFunc(func(model string, u middleware.Usage) (int64, bool) {
	switch model {
	case "gpt-4o":
		return u.InputTokens*250/100 + u.OutputTokens*10, true
	case "gpt-4o-mini":
		return u.InputTokens*15/100 + u.OutputTokens*60/100, true
	}
	return 0, false
})

// simulate makes n sequential calls against a primary whose latency has a
// long tail (every 20th call takes 5s, the others 100–250ms) and a steady
// fallback model (300ms), and returns each call's latency and facts.
func simulate(t *testing.T, n int, hedge fallback.Hedge) ([]time.Duration, []middleware.CallFinished) {
	srv := openaitest.New()
	replies := make([]openaitest.Reply, n)
	for i := range replies {
		lat := 100*time.Millisecond + time.Duration(i%7)*25*time.Millisecond
		if i%20 == 19 {
			lat = 5 * time.Second
		}
		replies[i] = openaitest.Reply{Content: "Disk at 42%.", Latency: lat}
	}
	srv.On(openaitest.Model("gpt-4o")).Reply(replies...)
	srv.On(openaitest.Model("gpt-4o-mini")).Reply(openaitest.Reply{Content: "Disk at 42%.", Latency: 300 * time.Millisecond})
	rec := &recorder{}
	h := middleware.Then(provider(srv), instrument.New(prices, rec),
		middlewaretest.Must(fallback.New(fallback.Config{Models: []string{"gpt-4o-mini"}, Hedge: hedge})), middleware.Meter(prices, nil))
	lats := make([]time.Duration, n)
	for i := range n {
		start := time.Now()
		if _, err := h.Handle(context.Background(), user("How full is the disk?")); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		lats[i] = time.Since(start)
	}
	return lats, rec.finished()
}

func p99(lats []time.Duration) time.Duration {
	s := slices.Clone(lats)
	slices.Sort(s)
	return s[len(s)*99/100]
}

// Must show: hedging cuts the p99 of a long-tailed primary over 1,000
// simulated calls, and a hedged call is billed for both models.
func TestHedgingCutsTheTail(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		plain, _ := simulate(t, 1000, fallback.Hedge{})
		hedged, calls := simulate(t, 1000, fallback.Hedge{Percentile: 90, Delay: time.Second})
		t.Logf("p99 without hedging %v, with hedging %v", p99(plain), p99(hedged))
		if p99(plain) != 5*time.Second {
			t.Fatalf("unhedged p99 %v, want the 5s tail", p99(plain))
		}
		// A slow primary is hedged after p90 (250ms) and the fallback
		// answers 300ms later; the first 20 calls wait the fixed 1s.
		if p := p99(hedged); p > 550*time.Millisecond {
			t.Fatalf("hedged p99 %v, want at most 550ms", p)
		}
		both := 0
		for _, c := range calls {
			f := c.Facts
			if len(f.Attempts) == 1 {
				if f.CostPico != mustCost(t, f.Model, c.Usage) {
					t.Fatalf("single attempt billed %d, want %d", f.CostPico, mustCost(t, f.Model, c.Usage))
				}
				continue
			}
			if len(f.Attempts) != 2 || !f.Attempts[1].Hedge || f.Attempts[1].Model != "gpt-4o-mini" {
				t.Fatalf("attempts %+v", f.Attempts)
			}
			var want, winner int64
			unsent := false
			for _, a := range f.Attempts {
				var ns *middleware.NotSentError
				if errors.As(a.Err, &ns) {
					// Lost the race before its request was written (the
					// primary answered at the instant the hedge began):
					// the provider never had it.
					if a.CostPico != 0 || !a.Usage.IsZero() {
						t.Fatalf("attempt %+v never sent, yet billed", a)
					}
					unsent = true
					continue
				}
				if a.Usage.IsZero() {
					t.Fatalf("attempt %+v was not billed", a)
				}
				if a.CostPico != mustCost(t, a.Model, a.Usage) {
					t.Fatalf("attempt %+v not priced at its own model", a)
				}
				want += a.CostPico
				if a.Err == nil {
					winner = a.CostPico
				}
			}
			if f.CostPico != want || f.CostPico <= winner && !unsent {
				t.Fatalf("hedged call billed %d, want %d (both attempts)", f.CostPico, want)
			}
			if f.Model == "gpt-4o-mini" {
				both++
			}
		}
		if both < 40 {
			t.Fatalf("only %d calls were won by the hedge, want about 50", both)
		}
	})
}

func mustCost(t *testing.T, model string, u middleware.Usage) int64 {
	c, ok := prices.Cost(model, u)
	if !ok {
		t.Fatalf("no price for %s", model)
	}
	return c
}

// Streaming calls are never hedged; a primary that answers before the delay
// is not hedged either.
func TestNoHedgeForStreamsAndFastAnswers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		srv.On(openaitest.Model("gpt-4o")).Reply(openaitest.Reply{Content: "slow", Latency: 2 * time.Second})
		srv.On().Reply(openaitest.Text("hedge"))
		h := middlewaretest.Must(fallback.New(fallback.Config{Models: []string{"gpt-4o-mini"}, Hedge: fallback.Hedge{Delay: time.Second}}))(provider(srv))
		req := user("hi")
		req.Stream = func(context.Context, middleware.Chunk) error { return nil }
		if resp, err := h.Handle(context.Background(), req); err != nil || resp.Message.Content != "slow" {
			t.Fatalf("%v %v", resp, err)
		}
		if srv.Count() != 1 {
			t.Fatalf("a stream was hedged")
		}
	})
}

// Hedging with a single model — no fallback models, or only the requested
// one — is not a no-op: a slow call is sent to the same model again, the
// first answer wins and both attempts are billed.
func TestHedgingWithOneModel(t *testing.T) {
	t.Parallel()
	for _, models := range [][]string{nil, {"gpt-4o"}} {
		synctest.Test(t, func(t *testing.T) {
			srv := openaitest.New()
			defer srv.Close()
			srv.On(openaitest.Model("gpt-4o")).Reply(
				openaitest.Reply{Content: "slow replica", Latency: 5 * time.Second, Usage: &openaitest.Usage{PromptTokens: 100, CompletionTokens: 10}},
				openaitest.Reply{Content: "fast replica", Latency: 200 * time.Millisecond, Usage: &openaitest.Usage{PromptTokens: 100, CompletionTokens: 10}})
			rec := &recorder{}
			h := middleware.Then(provider(srv), instrument.New(prices, rec),
				middlewaretest.Must(fallback.New(fallback.Config{Models: models, Hedge: fallback.Hedge{Delay: time.Second}})), middleware.Meter(prices, nil))
			start := time.Now()
			resp, err := h.Handle(context.Background(), user("How full is the disk?"))
			if err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); resp.Message.Content != "fast replica" || took != 1200*time.Millisecond {
				t.Fatalf("models %v: answer %q after %v, want the hedge's after 1.2s", models, resp.Message.Content, took)
			}
			if got := srv.Count(); got != 2 {
				t.Fatalf("models %v: %d requests, want 2", models, got)
			}
			f := rec.finished()[0].Facts
			if len(f.Attempts) != 2 || f.Attempts[0].Model != "gpt-4o" || f.Attempts[1].Model != "gpt-4o" || !f.Attempts[1].Hedge {
				t.Fatalf("models %v: attempts %+v", models, f.Attempts)
			}
			var want int64
			for _, a := range f.Attempts {
				want += mustCost(t, a.Model, a.Usage)
			}
			if f.CostPico != want || want <= mustCost(t, "gpt-4o", middleware.Usage{InputTokens: 100, OutputTokens: 10}) {
				t.Fatalf("models %v: billed %d, want %d for both attempts", models, f.CostPico, want)
			}
		})
	}
}

// TestPanicInAHedgedAttemptIsItsError: an attempt that panics on the
// hedging goroutine fails that attempt only; the other one answers.
func TestPanicInAHedgedAttemptIsItsError(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		inner := middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			if req.Model == "gpt-4o-mini" {
				panic("hedge target broken")
			}
			select {
			case <-time.After(2 * time.Second):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return &middleware.Response{Model: req.Model, FinishReason: "stop",
				Message: middleware.Message{Role: middleware.RoleAssistant, Content: "slow but fine"}}, nil
		})
		h := middleware.Then(inner, middlewaretest.Must(fallback.New(fallback.Config{Models: []string{"gpt-4o-mini"}, Hedge: fallback.Hedge{Delay: time.Second}})))
		resp, err := h.Handle(context.Background(), user("How full is the disk?"))
		if err != nil || resp.Message.Content != "slow but fine" {
			t.Fatalf("resp %+v, err %v", resp, err)
		}
	})
}
