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
	"github.com/tokenwise/tokenwise/llmwrap/fallback"
	"github.com/tokenwise/tokenwise/llmwrap/retry"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/tokens"
)

// TestBudgetWithoutAMeterChargesAnAttemptTimedOutInFlight: a call whose
// request was sent and whose deadline ran out before the answer (the
// provider may have processed it, and bills its input) is charged its
// estimated input, by the Meter's rule, by a budget's Middleware composed
// by hand with no Meter below it — at the bottom of a chain, alone, or
// above a retry layer, a fallback layer or both — as by a budget with the
// chain's Meter under it. Through go-openai and langchaingo, on synctest's
// fake time. Before, a budget at the bottom charged 0 where the one above
// the layers charged the estimate: the ledgers disagreed, and one did not
// count what the provider may bill.
func TestBudgetWithoutAMeterChargesAnAttemptTimedOutInFlight(t *testing.T) {
	for _, client := range []string{"go-openai", "langchaingo"} {
		for _, comp := range []string{"alone", "above retry", "above fallback", "above both"} {
			t.Run(client+"/"+comp, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					// run sends the call, which the server never answers,
					// through chain under a deadline of 30s.
					run := func(chain middleware.Middleware) {
						chain = middleware.Chain(startCallRecord, chain)
						srv := openaitest.New()
						srv.On().Reply(openaitest.Reply{Fault: openaitest.Fault{Kind: openaitest.FaultStall}})
						ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
						defer cancel()
						err := budgetAboveCallIn(ctx, t, client, chain, srv)
						if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, middleware.ErrTimeout) {
							t.Fatalf("call: %v, want its deadline", err)
						}
						synctest.Wait()
						if n := srv.Count(); n != 1 {
							t.Fatalf("%d requests sent, want 1", n)
						}
					}
					metered := ledger{dailyTeamPolicy(), budget.NewMemoryStore()}
					meterMW := middleware.Meter(llmwrap.Pricer(metered.p), budget.BilledUsageAt(tokens.New(), ""))
					run(middleware.Chain(metered.budget(t), meterMW))
					want := ledgerSpent(t, metered.p, metered.store, "sre")
					if want <= 0 {
						t.Fatalf("a budget with the Meter below it charged %d µ$, want the estimated input", want)
					}
					above := ledger{dailyTeamPolicy(), budget.NewMemoryStore()}
					bottom := ledger{dailyTeamPolicy(), budget.NewMemoryStore()}
					rt, err := retry.New(retry.Config{MaxAttempts: 2, BaseDelay: time.Millisecond})
					if err != nil {
						t.Fatal(err)
					}
					fb, err := fallback.New(fallback.Config{Models: []string{"gpt-4o"}})
					if err != nil {
						t.Fatal(err)
					}
					switch comp {
					case "alone":
						run(middleware.Chain(above.budget(t), bottom.budget(t)))
					case "above retry":
						run(middleware.Chain(above.budget(t), rt.Middleware(), bottom.budget(t)))
					case "above fallback":
						run(middleware.Chain(above.budget(t), fb.Middleware(), bottom.budget(t)))
					default:
						run(middleware.Chain(above.budget(t), fb.Middleware(), rt.Middleware(), bottom.budget(t)))
					}
					if got := ledgerSpent(t, bottom.p, bottom.store, "sre"); got != want {
						t.Errorf("the budget at the bottom (no Meter below) charged %d µ$; with the Meter below, %d µ$", got, want)
					}
					if got := ledgerSpent(t, above.p, above.store, "sre"); got != want {
						t.Errorf("the budget %s charged %d µ$; with the Meter below, %d µ$", comp, got, want)
					}
				})
			})
		}
	}
}
