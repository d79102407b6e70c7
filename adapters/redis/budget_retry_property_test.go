package redis_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
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

// TestRedisRetriedAttemptsNeverOvershootTheBudget is llmwrap's
// TestRetriedAttemptsNeverOvershootTheBudget with the team's ledger in
// Redis: concurrent go-openai calls whose first attempts are cut after
// their 200 (the provider billed them) or fail, and whose last attempt
// answers with all the output it was allowed, and answers without usage
// whose estimate is capped at max_tokens. The ledger never passes its
// limit, in tokens or in USD, and nothing stays reserved.
func TestRedisRetriedAttemptsNeverOvershootTheBudget(t *testing.T) {
	c := testRedis(t)
	for seed := range uint64(2) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			prefix := testPrefix(t, c)
			srv := openaitest.New()
			const maxOut = 50
			full := openaitest.Reply{Content: strings.TrimSpace(strings.Repeat(" ok", maxOut)), Usage: &openaitest.Usage{PromptTokens: 5, CompletionTokens: maxOut}}
			cut := openaitest.Reply{Content: full.Content, Fault: openaitest.Fault{Kind: openaitest.FaultCut}}
			for fails := range 3 {
				for _, kind := range []string{"cut", "500"} {
					var reps []openaitest.Reply
					for range fails {
						if kind == "cut" {
							reps = append(reps, cut)
						} else {
							reps = append(reps, openaitest.ServerError())
						}
					}
					for i := range 100 {
						srv.On(openaitest.LastContains(fmt.Sprintf("#%s-%d-%d.", kind, fails, i))).Reply(append(reps, full)...)
					}
				}
			}
			limit := "max_tokens: 2000"
			if seed == 1 {
				limit = "max_usd: 0.0015"
			}
			p, err := policies.LoadBytes([]byte(fmt.Sprintf(`version: 1
name: prop
budget:
  team: {period: daily, %s}
  min_output_tokens: %d
  store: {kind: redis, key_prefix: %q}
fallback:
  retry: {max_attempts: 3, base_delay: 1ms, max_delay: 2ms}
`, limit, maxOut, prefix)), "prop.yaml")
			if err != nil {
				t.Fatal(err)
			}
			store := redis.NewBudgetStore(c)
			chain, err := llmwrap.Build(p, llmwrap.WithBudgetStore(store), llmwrap.WithLogger(slog.New(slog.DiscardHandler)))
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
			_, lim := ledger.Limits()
			over := func(b budget.Remaining) bool {
				return lim.Tokens > 0 && b.Used.Tokens > lim.Tokens || lim.USDMicros > 0 && b.Used.USDMicros > lim.USDMicros
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			refused, next := 0, 0
			for g := range 12 {
				rg := rand.New(rand.NewPCG(seed, uint64(g)))
				wg.Go(func() {
					for range 8 {
						mu.Lock()
						i := next
						next++
						mu.Unlock()
						kind := []string{"cut", "500"}[rg.IntN(2)]
						_, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", MaxCompletionTokens: maxOut,
							Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: fmt.Sprintf("#%s-%d-%d.", kind, rg.IntN(3), i)}}})
						if errors.Is(err, budget.ErrExceeded) {
							mu.Lock()
							refused++
							mu.Unlock()
						}
						if rem, err := ledger.Remaining(ctx, "devops"); err != nil {
							t.Error(err)
						} else if over(rem) {
							t.Errorf("after a %s call: the ledger spent %+v, past its limit %+v", kind, rem.Used, lim)
						}
					}
				})
			}
			wg.Wait()
			rem, err := ledger.Remaining(ctx, "devops")
			if err != nil {
				t.Fatal(err)
			}
			if over(rem) || !rem.Reserved.IsZero() || rem.InFlight != 0 {
				t.Errorf("ledger used %+v (limit %+v), reserved %+v, in flight %d", rem.Used, lim, rem.Reserved, rem.InFlight)
			}
			if refused == 0 {
				t.Errorf("no call refused: the budget did not bind")
			}
			t.Logf("%d refused, ledger %+v of %+v", refused, rem.Used, lim)
		})
	}
}
