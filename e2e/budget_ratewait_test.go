package e2e

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/llmwrap/ratelimit"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/tokens"
)

// TestBudgetChargesNothingForACallCancelledWhileWaitingForTheRateLimit: a
// call cancelled while the rate-limit layer below the budget holds it
// (waiting for a request of the model's rpm) was never sent: the provider
// bills nothing, the Meter below records no attempt, and the budget must
// charge nothing for it. Layered as a built chain has them (budget, rate
// limit, Meter), through go-openai and langchaingo, on synctest's fake
// time: the ledger after an answered call and a cancelled one is the
// ledger after the answered call alone.
func TestBudgetChargesNothingForACallCancelledWhileWaitingForTheRateLimit(t *testing.T) {
	for _, client := range []string{"go-openai", "langchaingo"} {
		t.Run(client, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// spent is what a ledger is charged for calls calls, the
				// last one cancelled after 10s when cancelLast.
				spent := func(calls int, cancelLast bool) int64 {
					l := ledger{dailyTeamPolicy(), budget.NewMemoryStore()}
					b, err := llmwrap.NewBudget(l.p, budget.WithStore(l.store))
					if err != nil {
						t.Fatal(err)
					}
					rl, err := ratelimit.New(ratelimit.Config{
						Models:  map[string]ratelimit.ModelLimit{"gpt-4o-mini": {RPM: 1}},
						OnLimit: ratelimit.OnLimitWait, MaxWait: time.Hour,
					})
					if err != nil {
						t.Fatal(err)
					}
					meter := middleware.Meter(llmwrap.Pricer(l.p), budget.BilledUsageAt(tokens.New(), ""))
					chain := middleware.Chain(startCallRecord, b.Middleware(), rl.Middleware(), meter)
					srv := openaitest.New()
					srv.On().Reply(openaitest.Reply{Content: "Disks are fine."})
					for i := range calls {
						ctx, cancel := context.WithCancel(context.Background())
						if cancelLast && i == calls-1 {
							time.AfterFunc(10*time.Second, cancel)
						}
						err := budgetAboveCallIn(ctx, t, client, chain, srv)
						cancel()
						if cancelLast && i == calls-1 {
							if !errors.Is(err, context.Canceled) {
								t.Fatalf("call %d: %v, want its cancellation", i+1, err)
							}
						} else if err != nil {
							t.Fatalf("call %d: %v", i+1, err)
						}
					}
					synctest.Wait()
					if n := srv.Count(); n != 1 {
						t.Fatalf("%d requests sent, want 1", n)
					}
					return ledgerSpent(t, l.p, l.store, "sre")
				}
				want := spent(1, false)
				if want <= 0 {
					t.Fatalf("the answered call was charged %d µ$", want)
				}
				if got := spent(2, true); got != want {
					t.Errorf("an answered call and one cancelled before it was sent charged %d µ$, want %d µ$ (the answered call's)", got, want)
				}
			})
		})
	}
}
