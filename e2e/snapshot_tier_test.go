package e2e

import (
	"context"
	"sync/atomic"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// TestPrioritySnapshotIsBilledAtItsOwnPriorityRates: a priority call to
// gpt-4o answered by the dated snapshot gpt-4o-2024-05-13 (an Azure
// deployment of that version, or a caller who names it) is billed at that
// snapshot's priority rates — $8.75 input, $26.25 output per 1M
// (openai.com/api-priority-processing) — not at its standard $5/$15: the
// Meter's cost and the team ledger equal the provider's bill.
func TestPrioritySnapshotIsBilledAtItsOwnPriorityRates(t *testing.T) {
	body := `{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o-2024-05-13","service_tier":"priority",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":1000,"completion_tokens":100,"total_tokens":1100}}`
	for _, asked := range []string{"gpt-4o", "gpt-4o-2024-05-13"} {
		t.Run(asked, func(t *testing.T) {
			srv := openaitest.New()
			srv.On().Reply(openaitest.Reply{Body: []byte(body)})
			p := dailyTeamPolicy()
			store := budget.NewMemoryStore()
			var cost atomic.Int64
			client := billingClient(p, srv, store, &cost)
			ctx := middleware.WithTeam(context.Background(), "sre")
			if _, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: asked, MaxCompletionTokens: 200,
				ServiceTier: goopenai.ServiceTierPriority,
				Messages:    []goopenai.ChatCompletionMessage{{Role: "user", Content: "Check the disks."}}}); err != nil {
				t.Fatal(err)
			}
			const want = 1000*8_750_000 + 100*26_250_000 // pico-USD: $0.011375
			if got := cost.Load(); got != want {
				t.Errorf("the call cost %s, the provider bills %s", policies.PicoUSD(got), policies.PicoUSD(want))
			}
			if got := ledgerSpent(t, p, store, "sre"); got != policies.PicoUSD(want).Ceil().Micro() {
				t.Errorf("ledger %d µ$, the provider bills %s", got, policies.PicoUSD(want))
			}
		})
	}
}
