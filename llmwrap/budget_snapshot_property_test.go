package llmwrap_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// TestSnapshotAnswerNeverOvershootsTheBudget: an Azure deployment of
// gpt-4o-2024-05-13 answers calls for "gpt-4o" as that snapshot, which the
// catalog prices at $5/$15 per 1M, twice gpt-4o's $2.50/$10. The ledger
// bills the snapshot's price (as the provider does) but the reservation
// was priced at gpt-4o's: of concurrent calls, the one a budget of
// $0.0015 admits answers with all the output it was allowed and is
// settled past the limit its reservation fitted.
func TestSnapshotAnswerNeverOvershootsTheBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const maxOut = 100
		srv := openaitest.New()
		srv.On().Reply(openaitest.Reply{Content: words(maxOut), Model: "gpt-4o-2024-05-13",
			Usage: &openaitest.Usage{PromptTokens: 5, CompletionTokens: maxOut}})
		p, err := policies.LoadBytes([]byte(`version: 1
name: prop
budget:
  team: {period: daily, max_usd: 0.0015}
  min_output_tokens: 100
`), "prop.yaml")
		if err != nil {
			t.Fatal(err)
		}
		client, ledger := budgetedClient(t, p, srv)
		ctx := middleware.WithTeam(context.Background(), "devops")
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 4 {
					_, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o", MaxCompletionTokens: maxOut,
						Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: fmt.Sprintf("call %d/%d", g, i)}}})
					if err != nil && !errors.Is(err, budget.ErrExceeded) {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		rem, err := ledger.Remaining(ctx, "devops")
		if err != nil {
			t.Fatal(err)
		}
		if _, lim := ledger.Limits(); rem.Used.USDMicros > lim.USDMicros {
			t.Errorf("the ledger spent %d µ$, past its limit of %d µ$", rem.Used.USDMicros, lim.USDMicros)
		}
	})
}
