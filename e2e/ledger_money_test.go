package e2e

// The team ledger against the call's report (the Meter) and the
// provider's bill, computed independently from OpenAI's public prices.

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// meteredClient is go-openai over a chain of p on srv, with store as the
// budget store, summing the calls' reported costs in cost.
func meteredClient(t *testing.T, p *policies.Policy, srv *openaitest.Server, store budget.Store, cost *atomic.Int64) *goopenai.Client {
	t.Helper()
	obs := middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
		if f, ok := e.(middleware.CallFinished); ok {
			cost.Add(f.Facts.CostPico)
		}
	})
	chain := llmwrap.MustBuild(p, llmwrap.WithBudgetStore(store), llmwrap.WithObserver(obs),
		llmwrap.WithLogger(slog.New(slog.DiscardHandler)))
	cfg := goopenai.DefaultConfig("test-key")
	cfg.BaseURL = "http://openai.test/v1"
	cfg.HTTPClient = twopenai.NewHTTPClient(chain, twopenai.WithBaseTransport(srv.Transport()))
	return goopenai.NewClientWithConfig(cfg)
}

// ledgerCall makes one chat call of model as team sre.
func ledgerCall(t *testing.T, client *goopenai.Client, model string, maxTokens int) {
	t.Helper()
	ctx := middleware.WithTeam(context.Background(), "sre")
	if _, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: model, MaxCompletionTokens: maxTokens,
		Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "hi"}}}); err != nil {
		t.Fatal(err)
	}
}

// The caller asks for "gpt-4o" and the provider answers as the dated
// snapshot "gpt-4o-2024-05-13" (an Azure deployment of that version does
// exactly this), which has its own list price, $5/$15 per 1M. The Meter
// (run report, events, OTel) and the team ledger (/v1/spend, the budget)
// both bill the snapshot's price.
func TestLedgerPricesTheModelThatAnswered(t *testing.T) {
	srv := openaitest.New()
	srv.On().Reply(openaitest.Reply{Content: "ok", Model: "gpt-4o-2024-05-13",
		Usage: &openaitest.Usage{PromptTokens: 1_000, CompletionTokens: 100}})
	p := dailyTeamPolicy()
	store := budget.NewMemoryStore()
	var cost atomic.Int64
	ledgerCall(t, meteredClient(t, p, srv, store, &cost), "gpt-4o", 200)
	// gpt-4o-2024-05-13: 1,000 × $5 + 100 × $15 per 1M = $0.0065.
	const want = 1_000*5_000_000 + 100*15_000_000
	if got := cost.Load(); got != want {
		t.Errorf("reported cost %s, want %s", policies.PicoUSD(got), policies.PicoUSD(want))
	}
	if got := ledgerSpent(t, p, store, "sre"); got != policies.PicoUSD(want).Ceil().Micro() {
		t.Errorf("team ledger charged %d µ$, the report says %s (want %d µ$)", got, policies.PicoUSD(cost.Load()), policies.PicoUSD(want).Ceil().Micro())
	}
}

// A price the policy itself gives the model asked for (a deployment's
// contract price) wins over the catalog's price of the name the provider
// answers with, in the report and the ledger alike; a policy price of the
// answer's own name wins over it.
func TestLedgerPricesAPolicyPriceOfTheRequestedModel(t *testing.T) {
	for _, tt := range []struct {
		name, asked, answered string
		models                map[string]policies.ModelSpec
		want                  int64 // pico, for 1,000 in + 100 out
	}{
		{"contract price of the model asked for", "gpt-4o", "gpt-4o-2024-05-13",
			map[string]policies.ModelSpec{"gpt-4o": {InputPer1M: 2_000_000, OutputPer1M: 8_000_000}},
			1_000*2_000_000 + 100*8_000_000},
		{"a deployment's name", "azure-prod-4o", "gpt-4o-2024-08-06",
			map[string]policies.ModelSpec{"azure-prod-4o": {InputPer1M: 1_000_000, OutputPer1M: 4_000_000, ContextWindow: 128_000}},
			1_000*1_000_000 + 100*4_000_000},
		{"a policy price of the answer's name", "gpt-4o", "gpt-4o-2024-05-13",
			map[string]policies.ModelSpec{"gpt-4o": {InputPer1M: 2_000_000, OutputPer1M: 8_000_000},
				"gpt-4o-2024-05-13": {InputPer1M: 4_000_000, OutputPer1M: 12_000_000}},
			1_000*4_000_000 + 100*12_000_000},
		{"no policy price: the catalog's of the answer", "gpt-4o", "gpt-4o-2024-05-13",
			map[string]policies.ModelSpec{"gpt-4o": {ContextWindow: 64_000}},
			1_000*5_000_000 + 100*15_000_000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := openaitest.New()
			srv.On().Reply(openaitest.Reply{Content: "ok", Model: tt.answered,
				Usage: &openaitest.Usage{PromptTokens: 1_000, CompletionTokens: 100}})
			p := dailyTeamPolicy()
			p.Models = tt.models
			store := budget.NewMemoryStore()
			var cost atomic.Int64
			ledgerCall(t, meteredClient(t, p, srv, store, &cost), tt.asked, 200)
			if got := cost.Load(); got != tt.want {
				t.Errorf("reported cost %s, want %s", policies.PicoUSD(got), policies.PicoUSD(tt.want))
			}
			if got := ledgerSpent(t, p, store, "sre"); got != policies.PicoUSD(tt.want).Ceil().Micro() {
				t.Errorf("team ledger charged %d µ$, want %d µ$", got, policies.PicoUSD(tt.want).Ceil().Micro())
			}
		})
	}
}

// 1,000 calls of gpt-4o-mini, each billed 11 prompt tokens and 1
// completion token by the provider: $2.25 µ each, $0.00225 in all. The run
// report sums them exactly, and so does the team ledger: it keeps the
// exact sum and rounds it up once (it used to round each call up to a
// whole micro-dollar and charge $0.003, +33%).
func TestLedgerRoundingDrift(t *testing.T) {
	srv := openaitest.New()
	srv.On().Reply(openaitest.Reply{Content: "ok", Usage: &openaitest.Usage{PromptTokens: 11, CompletionTokens: 1}})
	p := dailyTeamPolicy()
	store := budget.NewMemoryStore()
	var cost atomic.Int64
	client := meteredClient(t, p, srv, store, &cost)
	const calls = 1_000
	for range calls {
		ledgerCall(t, client, "gpt-4o-mini", 5)
	}
	const want = calls * (11*150_000 + 1*600_000) // pico: $0.00225
	if got := cost.Load(); got != want {
		t.Errorf("reported cost %s, want %s", policies.PicoUSD(got), policies.PicoUSD(want))
	}
	if got := ledgerSpent(t, p, store, "sre"); got != policies.PicoUSD(want).Ceil().Micro() {
		t.Errorf("team ledger charged %s for a bill of %s", policies.USD(got), policies.PicoUSD(want))
	}
}
