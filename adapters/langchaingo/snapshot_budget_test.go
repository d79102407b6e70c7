package langchaingo_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tmc/langchaingo/llms"
	"github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// TestLangchaingoSnapshotAnswerNeverOvershootsTheBudget: langchaingo
// calls for gpt-4o ($2.50/$10 per 1M), streams and not, answered as the
// snapshot gpt-4o-2024-05-13 ($5/$15), which the team ledger bills: 5
// input and 100 output tokens, 1,525 µ$ a call. Reserved at the
// snapshot's price, 16 concurrent calls under a limit of $0.005 leave the
// ledger within it, each answered call billed the snapshot's 1,525 µ$.
// (Reserved at gpt-4o's, about 1,025 µ$, four were let through: 6,100 µ$.)
func TestLangchaingoSnapshotAnswerNeverOvershootsTheBudget(t *testing.T) {
	const maxOut = 100
	srv := openaitest.New()
	t.Cleanup(srv.Close)
	srv.On().Reply(openaitest.Reply{Content: "ok", Model: "gpt-4o-2024-05-13",
		Usage: &openaitest.Usage{PromptTokens: 5, CompletionTokens: maxOut}})
	p, err := policies.LoadBytes([]byte(`version: 1
name: prop
budget:
  team: {period: daily, max_usd: 0.005}
  min_output_tokens: 100
`), "prop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	store := budget.NewMemoryStore()
	chain, err := llmwrap.Build(p, llmwrap.WithBudgetStore(store), llmwrap.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	base, err := openai.New(openai.WithBaseURL(srv.URL), openai.WithToken("test"), openai.WithModel("gpt-4o"),
		openai.WithHTTPClient(&http.Client{Transport: twlc.NewTransport(srv.Transport())}))
	if err != nil {
		t.Fatal(err)
	}
	llm := twlc.New(twlc.Models{"gpt-4o": base}, chain, twlc.WithDefaultModel("gpt-4o"))
	ledger, err := llmwrap.NewBudget(p, budget.WithStore(store))
	if err != nil {
		t.Fatal(err)
	}
	ctx := middleware.WithTeam(context.Background(), "devops")
	var answered atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2 {
				opts := []llms.CallOption{llms.WithMaxTokens(maxOut)}
				if i == 1 {
					opts = append(opts, llms.WithStreamingFunc(func(context.Context, []byte) error { return nil }))
				}
				_, err := llm.GenerateContent(ctx, []llms.MessageContent{human(fmt.Sprintf("call %d/%d", g, i))}, opts...)
				switch {
				case err == nil:
					answered.Add(1)
				case !errors.Is(err, budget.ErrExceeded):
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
	if n := answered.Load(); n == 0 || rem.Used.USDMicros != n*1525 || !rem.Reserved.IsZero() {
		t.Errorf("%d calls answered, the ledger spent %d µ$ (want %d µ$: 1,525 µ$ each, at the snapshot's price) and holds %+v reserved",
			n, rem.Used.USDMicros, n*1525, rem.Reserved)
	}
}
