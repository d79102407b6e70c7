package llmwrap_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// randomCase returns s with each letter upper- or lower-cased at random.
func randomCase(r *rand.Rand, s string) string {
	b := []byte(s)
	for i, c := range b {
		if r.IntN(2) == 0 {
			b[i] = strings.ToUpper(string(c))[0]
		}
	}
	return string(b)
}

// An answer that names its model in another case than the catalog's
// (Azure's and some OpenAI-compatible servers' "GPT-4o-2024-05-13"), with
// or without a router's prefix, is billed at that model's price, as the
// provider bills it: gpt-4o-2024-05-13's $5/$15 per 1M, not the
// requested gpt-4o's $2.50/$10.
func TestAnswerNamedInAnotherCaseIsBilledAtItsPrice(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	want, ok := policies.Default().Model("gpt-4o-2024-05-13")
	if !ok {
		t.Fatal("gpt-4o-2024-05-13 not in the catalog")
	}
	names := []string{"GPT-4o-2024-05-13", "openai/GPT-4O-2024-05-13"}
	for range 8 {
		names = append(names, randomCase(r, "gpt-4o-2024-05-13"))
	}
	for _, answered := range names {
		t.Run(answered, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := openaitest.New()
				srv.On().Reply(openaitest.Reply{Content: "ok", Model: answered,
					Usage: &openaitest.Usage{PromptTokens: 1000, CompletionTokens: 1000}})
				p, err := policies.LoadBytes([]byte("version: 1\nname: case\n"), "case.yaml")
				if err != nil {
					t.Fatal(err)
				}
				client, _ := budgetedClient(t, p, srv)
				ctx, run := middleware.StartRun(context.Background(), "r")
				if _, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o",
					Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "hi"}}}); err != nil {
					t.Fatal(err)
				}
				calls := run.Calls()
				if len(calls) != 1 {
					t.Fatalf("%d calls", len(calls))
				}
				price := int64(want.Cost(policies.TokenCounts{Input: 1000, Output: 1000}))
				if calls[0].CostPico != price {
					t.Errorf("an answer of %q billed %d pico-USD, want gpt-4o-2024-05-13's %d", answered, calls[0].CostPico, price)
				}
			})
		})
	}
}

// A call that asks for a model in another case than the catalog's
// ("GPT-4o", as Azure accepts it) is priced as the model, and reserved at
// the dearest of its snapshots, so that answers naming gpt-4o-2024-05-13
// never take a ledger past its limit.
func TestRequestInAnotherCaseNeverOvershootsTheBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const maxOut = 100
		srv := openaitest.New()
		// Each answer takes a second: the calls of the 8 goroutines hold
		// their reservations at once.
		srv.On().Reply(openaitest.Reply{Content: words(maxOut), Model: "gpt-4o-2024-05-13", Latency: time.Second,
			Usage: &openaitest.Usage{PromptTokens: 5, CompletionTokens: maxOut}})
		p, err := policies.LoadBytes([]byte(`version: 1
name: prop
budget:
  team: {period: daily, max_usd: 0.01}
  min_output_tokens: 100
`), "prop.yaml")
		if err != nil {
			t.Fatal(err)
		}
		client, ledger := budgetedClient(t, p, srv)
		ctx := middleware.WithTeam(context.Background(), "devops")
		var wg sync.WaitGroup
		var answered sync.Map
		for g := range 8 {
			wg.Go(func() {
				for i := range 4 {
					_, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "GPT-4o", MaxCompletionTokens: maxOut,
						Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: fmt.Sprintf("call %d/%d", g, i)}}})
					if err != nil && !errors.Is(err, budget.ErrExceeded) {
						t.Error(err)
					}
					if err == nil {
						answered.Store(fmt.Sprint(g, i), true)
					}
				}
			})
		}
		wg.Wait()
		rem, err := ledger.Remaining(ctx, "devops")
		if err != nil {
			t.Fatal(err)
		}
		if _, lim := ledger.Limits(); rem.Used.USDMicros > lim.USDMicros || rem.Used.USDMicros == 0 {
			t.Errorf("the ledger spent %d µ$ of its limit of %d µ$, want some and never past it", rem.Used.USDMicros, lim.USDMicros)
		}
	})
}
