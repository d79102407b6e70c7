package redis_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/adapters/redis"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// TestRedisSnapshotAnswerNeverOvershootsTheBudget is llmwrap's
// TestSnapshotAnswerNeverOvershootsTheBudget with the team's ledger in
// Redis: calls for gpt-4o ($2.50/$10 per 1M) answered as the snapshot
// gpt-4o-2024-05-13 ($5/$15), which the ledger bills, are reserved at the
// snapshot's price, so that 32 concurrent calls under a limit of $0.005
// are settled within it — each answered call billed 5 input and 100
// output tokens at the snapshot's price, 1,525 µ$, and at least one
// answered.
func TestRedisSnapshotAnswerNeverOvershootsTheBudget(t *testing.T) {
	c := testRedis(t)
	const maxOut = 100
	srv := openaitest.New()
	t.Cleanup(srv.Close)
	srv.On().Reply(openaitest.Reply{Content: "ok", Model: "gpt-4o-2024-05-13",
		Usage: &openaitest.Usage{PromptTokens: 5, CompletionTokens: maxOut}})
	p, err := policies.LoadBytes(fmt.Appendf(nil, `version: 1
name: prop
budget:
  team: {period: daily, max_usd: 0.005}
  min_output_tokens: 100
  store: {kind: redis, key_prefix: %q}
`, testPrefix(t, c)), "prop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	store := redis.NewBudgetStore(c)
	chain, err := llmwrap.Build(p, llmwrap.WithBudgetStore(store))
	if err != nil {
		t.Fatal(err)
	}
	cfg := goopenai.DefaultConfig("test")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = twopenai.NewHTTPClient(chain, twopenai.WithBaseTransport(srv.Transport()))
	client := goopenai.NewClientWithConfig(cfg)
	ledger, err := llmwrap.NewBudget(p, budget.WithStore(store))
	if err != nil {
		t.Fatal(err)
	}
	ctx := middleware.WithTeam(context.Background(), "devops")
	var answered atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 4 {
				_, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o", MaxCompletionTokens: maxOut,
					Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: fmt.Sprintf("call %d/%d", g, i)}}})
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
	_, lim := ledger.Limits()
	if rem.Used.USDMicros > lim.USDMicros {
		t.Errorf("the ledger spent %d µ$, past its limit of %d µ$", rem.Used.USDMicros, lim.USDMicros)
	}
	if n := answered.Load(); n == 0 || rem.Used.USDMicros != n*1525 || !rem.Reserved.IsZero() {
		t.Errorf("%d calls answered, the ledger spent %d µ$ (want %d µ$: 1,525 µ$ each, at the snapshot's price) and holds %+v reserved",
			n, rem.Used.USDMicros, n*1525, rem.Reserved)
	}
}
