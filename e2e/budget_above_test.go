package e2e

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	goopenai "github.com/sashabaranov/go-openai"
	"github.com/tmc/langchaingo/llms"
	lcopenai "github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/llmwrap/fallback"
	"github.com/tokenwise/tokenwise/llmwrap/retry"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
	"github.com/tokenwise/tokenwise/tokens"
)

// budgetAboveCall sends one chat call for gpt-4o-mini (fallback model
// gpt-4o) through chain, with the real go-openai or langchaingo client
// (twlc.NewTransport) over HTTP to srv.
func budgetAboveCall(t *testing.T, client string, chain middleware.Middleware, srv *openaitest.Server) error {
	t.Helper()
	return budgetAboveCallIn(context.Background(), t, client, chain, srv)
}

// budgetAboveCallIn is budgetAboveCall under ctx (a deadline of the
// caller's).
func budgetAboveCallIn(ctx context.Context, t *testing.T, client string, chain middleware.Middleware, srv *openaitest.Server) error {
	t.Helper()
	prompt := strings.Repeat("Check the disks. ", 200)
	ctx = middleware.WithTeam(ctx, "sre")
	switch client {
	case "go-openai":
		cfg := goopenai.DefaultConfig("test-key")
		cfg.BaseURL = "http://openai.test/v1"
		cfg.HTTPClient = twopenai.NewHTTPClient(chain, twopenai.WithBaseTransport(srv.Transport()))
		_, err := goopenai.NewClientWithConfig(cfg).CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{
			Model: "gpt-4o-mini", MaxCompletionTokens: 2000,
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: prompt}}})
		return err
	default:
		models := twlc.Models{}
		for _, m := range []string{"gpt-4o-mini", "gpt-4o"} {
			inner, err := lcopenai.New(lcopenai.WithModel(m), lcopenai.WithToken("test-key"), lcopenai.WithBaseURL("http://openai.test/v1"),
				lcopenai.WithHTTPClient(&http.Client{Transport: twlc.NewTransport(srv.Transport())}))
			if err != nil {
				t.Fatal(err)
			}
			models[m] = inner
		}
		_, err := twlc.New(models, chain).GenerateContent(ctx, []llms.MessageContent{human(prompt)}, llms.WithModel("gpt-4o-mini"), llms.WithMaxTokens(2000))
		return err
	}
}

// TestBudgetAboveRetryAndFallbackChargesWhatTheProviderBilled: a budget's
// Middleware composed by hand ABOVE a retry layer, a fallback layer or
// both (one budget per request, the natural order) charges its ledger
// exactly what the provider billed for every attempt the layers below it
// sent — 429 then 200, 500 then 200, a malformed 200 then 200, an answer
// cut after its 200 then 200, a fallback to gpt-4o (another price) — as a
// budget at the bottom of the same chain (one charge per request sent)
// does; and around a built chain (the policy's own retry and fallback) as
// the built chain's ledger does. Through go-openai and langchaingo.
// Answers of a 200 are checked against the price list too: the
// reference ledger charges the answered model's price of the usage the
// server reported.
func TestBudgetAboveRetryAndFallbackChargesWhatTheProviderBilled(t *testing.T) {
	ok := openaitest.Reply{Content: "disks fine", Usage: &openaitest.Usage{PromptTokens: 100, CompletionTokens: 40}}
	scenarios := []struct {
		name  string
		first openaitest.Reply
		// billedFirst: the provider bills the failed attempt (its
		// estimated input, as the Meter bills it).
		billedFirst bool
	}{
		{"429 then 200", openaitest.Reply{Status: 429, Error: &openaitest.APIError{Message: "slow down", Type: "rate_limit_exceeded"}}, false},
		{"500 then 200", openaitest.Reply{Status: 500, Error: &openaitest.APIError{Message: "boom", Type: "server_error"}}, false},
		{"malformed 200 then 200", openaitest.Reply{Raw: [][]byte{[]byte(`<html><body>502 Bad Gateway</body></html>`)}}, true},
		{"cut 200 then 200", openaitest.Reply{Content: strings.Repeat("ok ", 300), Fault: openaitest.Fault{Kind: openaitest.FaultCut}}, true},
	}
	compositions := []string{"above retry", "above fallback", "above both", "above the built chain"}
	for _, client := range []string{"go-openai", "langchaingo"} {
		for _, sc := range scenarios {
			for _, comp := range compositions {
				t.Run(client+"/"+sc.name+"/"+comp, func(t *testing.T) {
					srv := openaitest.New()
					srv.On().Reply(sc.first, ok)
					above := ledger{dailyTeamPolicy(), budget.NewMemoryStore()}
					ref := ledger{dailyTeamPolicy(), budget.NewMemoryStore()}
					rt, err := retry.New(retry.Config{MaxAttempts: 2, BaseDelay: time.Millisecond})
					if err != nil {
						t.Fatal(err)
					}
					fb, err := fallback.New(fallback.Config{Models: []string{"gpt-4o"}})
					if err != nil {
						t.Fatal(err)
					}
					var chain middleware.Middleware
					switch comp {
					case "above retry":
						chain = middleware.Chain(above.budget(t), rt.Middleware(), ref.budget(t))
					case "above fallback":
						chain = middleware.Chain(above.budget(t), fb.Middleware(), ref.budget(t))
					case "above both":
						chain = middleware.Chain(above.budget(t), fb.Middleware(), rt.Middleware(), ref.budget(t))
					default:
						ref.p.Fallback = policies.Fallback{Models: []string{"gpt-4o"},
							Retry: policies.Retry{MaxAttempts: 2, BaseDelay: policies.Duration(time.Millisecond)}}
						chain = middleware.Chain(above.budget(t),
							llmwrap.MustBuild(ref.p, llmwrap.WithBudgetStore(ref.store), llmwrap.WithLogger(slog.New(slog.DiscardHandler))))
					}
					// The retry layer does not retry a malformed answer (not
					// transient): above it alone, the call fails after one
					// request, which the provider billed.
					once := comp == "above retry" && strings.HasPrefix(sc.name, "malformed")
					err = budgetAboveCall(t, client, chain, srv)
					if once != (err != nil) {
						t.Fatalf("call: %v", err)
					}
					reqs := srv.Requests()
					if wantN := map[bool]int{false: 2, true: 1}[once]; len(reqs) != wantN {
						t.Fatalf("%d requests sent, want %d", len(reqs), wantN)
					}
					want := ledgerSpent(t, ref.p, ref.store, "sre")
					if !sc.billedFirst {
						// Only the 200 was billed: its usage at the price of
						// the model that answered it.
						answered := reqs[1].Chat.Model
						pico, _ := llmwrap.Pricer(ref.p).Cost(answered, middleware.Usage{InputTokens: 100, OutputTokens: 40})
						if w := (pico + 999_999) / 1_000_000; want != w {
							t.Fatalf("reference ledger charged %d µ$, the provider billed %d µ$ (%s)", want, w, answered)
						}
					}
					if got := ledgerSpent(t, above.p, above.store, "sre"); got != want {
						t.Errorf("budget %s charged %d µ$; the provider billed %d µ$ for the %d requests sent", comp, got, want, len(reqs))
					}
				})
			}
		}
	}
}

// ledger is a policy's budget ledger in a store.
type ledger struct {
	p     *policies.Policy
	store budget.Store
}

// budget is the budget layer of l's policy over l's store, composed by
// hand.
func (l ledger) budget(t testing.TB) middleware.Middleware {
	b, err := llmwrap.NewBudget(l.p, budget.WithStore(l.store))
	if err != nil {
		t.Fatal(err)
	}
	return b.Middleware()
}

// startCallRecord starts the call's record, in which a Meter records each
// attempt (as a built chain's instrument layer starts it).
func startCallRecord(next middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		ctx, _ = middleware.StartCall(ctx, middleware.CallFacts{Model: req.Model})
		return next.Handle(ctx, req)
	})
}

// TestBudgetAboveFallbackNeverOvershootsOnADearerModel: a budget composed
// by hand above a fallback layer reserves the call at the requested
// model's worst case (gpt-4o-mini: about $0.0014 for 2,000 output tokens);
// a fallback to gpt-4o must be admitted at gpt-4o's own worst case before
// it is sent, else its answer (100 input and 250 output tokens, $0.00275)
// takes the $0.002 ledger past its limit. Through go-openai and
// langchaingo, budget above the fallback alone and above fallback and
// retry.
func TestBudgetAboveFallbackNeverOvershootsOnADearerModel(t *testing.T) {
	for _, client := range []string{"go-openai", "langchaingo"} {
		for _, comp := range []string{"above fallback", "above both"} {
			t.Run(client+"/"+comp, func(t *testing.T) {
				srv := openaitest.New()
				srv.On(openaitest.Model("gpt-4o-mini")).Reply(openaitest.Reply{Status: 500, Error: &openaitest.APIError{Message: "boom", Type: "server_error"}})
				srv.On(openaitest.Model("gpt-4o")).Reply(openaitest.Reply{Content: "disks fine", Usage: &openaitest.Usage{PromptTokens: 100, CompletionTokens: 250}})
				p := dailyTeamPolicy()
				p.Budget.Team.MaxUSD = policies.USD(2000) // $0.002
				store := budget.NewMemoryStore()
				b, err := llmwrap.NewBudget(p, budget.WithStore(store))
				if err != nil {
					t.Fatal(err)
				}
				fb, err := fallback.New(fallback.Config{Models: []string{"gpt-4o"}})
				if err != nil {
					t.Fatal(err)
				}
				rt, err := retry.New(retry.Config{MaxAttempts: 2, BaseDelay: time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				chain := middleware.Chain(b.Middleware(), fb.Middleware())
				if comp == "above both" {
					chain = middleware.Chain(b.Middleware(), fb.Middleware(), rt.Middleware())
				}
				err = budgetAboveCall(t, client, chain, srv)
				got := ledgerSpent(t, p, store, "sre")
				if limit := p.Budget.Team.MaxUSD.Micro(); got > limit {
					t.Fatalf("ledger charged %d µ$ past its %d µ$ limit (call error: %v)", got, limit, err)
				}
				if err == nil {
					t.Fatal("no error: the fallback to gpt-4o cannot be afforded")
				}
				// langchaingo's error is the chain's own: the fallback's,
				// which lists the budget's refusal of gpt-4o (go-openai's
				// is the HTTP answer of the provider's failure).
				if client == "langchaingo" && !errors.Is(err, budget.ErrExceeded) {
					t.Fatalf("err %v, want the budget's refusal of the fallback to gpt-4o", err)
				}
				for _, r := range srv.Requests() {
					if r.Chat.Model == "gpt-4o" {
						t.Fatalf("gpt-4o was sent a request the budget cannot afford")
					}
				}
			})
		}
	}
}

// TestBudgetAboveHedgingFallbackChargesEachAttemptOnce: a budget composed
// by hand above a fallback layer that hedges is told of both attempts of
// a hedged call — the one that answered and the one cancelled when it
// lost — and charges each once, as a budget below the fallback with a
// Meter under it (the built chain's order: one charge per request sent,
// by the Meter's rule) does: the answer at its usage, the loser, cancelled
// in flight, its input. The primary answers first, or the hedge does;
// with a Meter under the fallback, or none; two budgets stacked above it
// both charge it. Through go-openai and
// langchaingo, on synctest's fake time.
func TestBudgetAboveHedgingFallbackChargesEachAttemptOnce(t *testing.T) {
	for _, client := range []string{"go-openai", "langchaingo"} {
		for _, winner := range []string{"primary", "hedge"} {
			for _, meter := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s answers/meter below %v", client, winner, meter), func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						// run sends the call through a hedging fallback
						// with above composed over it and below under it.
						run := func(above, below middleware.Middleware) {
							slow, fast := 2*time.Second, 200*time.Millisecond
							mini, big := slow, fast
							if winner == "primary" {
								mini, big = 300*time.Millisecond, slow
							}
							srv := openaitest.New()
							srv.On(openaitest.Model("gpt-4o-mini")).Reply(openaitest.Reply{Content: "disks fine", Latency: mini,
								Usage: &openaitest.Usage{PromptTokens: 100, CompletionTokens: 40}})
							srv.On(openaitest.Model("gpt-4o")).Reply(openaitest.Reply{Content: "disks fine", Latency: big,
								Usage: &openaitest.Usage{PromptTokens: 100, CompletionTokens: 40}})
							fb, err := fallback.New(fallback.Config{Models: []string{"gpt-4o"}, Hedge: fallback.Hedge{Delay: 100 * time.Millisecond}})
							if err != nil {
								t.Fatal(err)
							}
							if err := budgetAboveCall(t, client, middleware.Chain(startCallRecord, above, fb.Middleware(), below), srv); err != nil {
								t.Fatalf("call: %v", err)
							}
							synctest.Wait()
							if n := srv.Count(); n != 2 {
								t.Fatalf("%d requests sent, want 2 (the call and its hedge)", n)
							}
						}
						above := ledger{dailyTeamPolicy(), budget.NewMemoryStore()}
						ref := ledger{dailyTeamPolicy(), budget.NewMemoryStore()}
						// The Meter as a built chain composes it.
						pricer := llmwrap.Pricer(ref.p)
						meterMW := middleware.Meter(pricer, budget.BilledUsageAt(tokens.New(), ""))
						run(nil, middleware.Chain(ref.budget(t), meterMW))
						var below middleware.Middleware
						if meter {
							below = meterMW
						}
						// A second budget between the first and the
						// fallback: the notes pass through it to the first,
						// and each charges the same.
						second := ledger{dailyTeamPolicy(), budget.NewMemoryStore()}
						run(middleware.Chain(above.budget(t), second.budget(t)), below)
						want := ledgerSpent(t, ref.p, ref.store, "sre")
						if got := ledgerSpent(t, second.p, second.store, "sre"); got != want {
							t.Errorf("the second budget above the hedging fallback charged %d µ$; the provider billed %d µ$ for the 2 requests sent", got, want)
						}
						answered := map[string]string{"primary": "gpt-4o-mini", "hedge": "gpt-4o"}[winner]
						pico, _ := pricer.Cost(answered, middleware.Usage{InputTokens: 100, OutputTokens: 40})
						if answer := (pico + 999_999) / 1_000_000; want <= answer {
							t.Fatalf("reference ledger charged %d µ$, not more than the answer's %d µ$: the cancelled loser's input is billed", want, answer)
						}
						if got := ledgerSpent(t, above.p, above.store, "sre"); got != want {
							t.Errorf("budget above the hedging fallback charged %d µ$; the provider billed %d µ$ for the 2 requests sent", got, want)
						}
					})
				})
			}
		}
	}
}
