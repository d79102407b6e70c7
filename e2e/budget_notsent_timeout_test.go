package e2e

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	goopenai "github.com/sashabaranov/go-openai"
	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/llmwrap/timeout"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/tokens"
)

// connectStall is a base transport whose connection is never made: it
// waits for the request's end without reading its body (nothing sent).
type connectStall struct{}

func (connectStall) RoundTrip(r *http.Request) (*http.Response, error) {
	<-r.Context().Done()
	return nil, r.Context().Err()
}

// TestBudgetChargesNothingForACallTimedOutBeforeItWasSent: a call whose
// timeout layer's call limit runs out while its connection is being made
// was never sent: the provider bills nothing. A budget composed by hand
// above the timeout layer, with no Meter below, charges it nothing, as
// one with the Meter below the timeout layer (a built chain's order)
// does. Through go-openai, on synctest's fake time.
func TestBudgetChargesNothingForACallTimedOutBeforeItWasSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spent := func(withMeter bool) int64 {
			l := ledger{dailyTeamPolicy(), budget.NewMemoryStore()}
			b, err := llmwrap.NewBudget(l.p, budget.WithStore(l.store))
			if err != nil {
				t.Fatal(err)
			}
			to, err := timeout.New(timeout.Config{Call: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			chain := middleware.Chain(startCallRecord, b.Middleware(), to.Middleware())
			if withMeter {
				chain = middleware.Chain(chain, middleware.Meter(llmwrap.Pricer(l.p), budget.BilledUsageAt(tokens.New(), "")))
			}
			cfg := goopenai.DefaultConfig("test-key")
			cfg.BaseURL = "http://openai.test/v1"
			cfg.HTTPClient = twopenai.NewHTTPClient(chain, twopenai.WithBaseTransport(connectStall{}))
			ctx := middleware.WithTeam(context.Background(), "sre")
			_, err = goopenai.NewClientWithConfig(cfg).CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{
				Model: "gpt-4o-mini", MaxCompletionTokens: 2000,
				Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: strings.Repeat("Check the disks. ", 200)}}})
			if !errors.Is(err, middleware.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("call: %v, want its timeout", err)
			}
			synctest.Wait()
			return ledgerSpent(t, l.p, l.store, "sre")
		}
		if got := spent(true); got != 0 {
			t.Fatalf("with the Meter below: %d µ$ for a call never sent", got)
		}
		if got := spent(false); got != 0 {
			t.Errorf("without a Meter below: %d µ$ for a call never sent, want 0 (as with the Meter)", got)
		}
	})
}
