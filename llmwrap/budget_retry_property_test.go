package llmwrap_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// TestRetriedAttemptsNeverOvershootTheBudget: concurrent go-openai calls
// whose first attempts time out or are cut (the provider read, and bills,
// their input) and whose last attempt answers with all the output it was
// allowed. Each call's reservation is its worst case; what its attempts
// are billed together must stay within the ledgers' limits, run and team,
// in tokens and in USD, and nothing stays reserved.
func TestRetriedAttemptsNeverOvershootTheBudget(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { retryProperty(t, seed) })
		})
	}
}

func retryProperty(t *testing.T, seed uint64) {
	srv := openaitest.New()
	const maxOut = 50
	full := openaitest.Reply{Content: words(maxOut), Usage: &openaitest.Usage{PromptTokens: 5, CompletionTokens: maxOut}}
	for _, fails := range []int{0, 1, 2} {
		for _, kind := range []string{"stall", "cut", "500"} {
			var reps []openaitest.Reply
			for range fails {
				switch kind {
				case "stall":
					reps = append(reps, openaitest.Stall())
				case "cut":
					reps = append(reps, openaitest.Reply{Content: words(maxOut), Fault: openaitest.Fault{Kind: openaitest.FaultCut}})
				case "500":
					reps = append(reps, openaitest.ServerError())
				}
			}
			reps = append(reps, full)
			for c := range 200 { // one rule per call: its own attempts' sequence
				srv.On(openaitest.LastContains(fmt.Sprintf("#%s-%d-%d.", kind, fails, c))).Reply(reps...)
			}
		}
	}
	limit := "max_tokens: 2000"
	if seed%2 == 1 {
		limit = "max_usd: 0.0015"
	}
	scope := "team: {period: daily, " + limit + "}"
	if seed >= 2 {
		scope = "run: {" + limit + "}"
	}
	p, err := policies.LoadBytes([]byte(`version: 1
name: prop
budget:
  `+scope+`
  min_output_tokens: 50 # the scripted answers are 50 tokens: never fitted below
timeouts: {call: 2s, total: 30s}
fallback:
  retry: {max_attempts: 3, base_delay: 1ms, max_delay: 2ms}
`), "prop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	client, ledger := budgetedClient(t, p, srv)
	ctx := middleware.WithTeam(context.Background(), "devops")
	ctx, run := middleware.StartRun(ctx, "run-1")
	runLim, teamLim := ledger.Limits()
	lim := teamLim
	balance := func() budget.Balance {
		rem, err := ledger.Remaining(ctx, "devops")
		if err != nil {
			t.Fatal(err)
		}
		return rem.Balance
	}
	if seed >= 2 {
		lim = runLim
		balance = func() budget.Balance { return ledger.RunBalance(run) }
	}
	over := func(b budget.Balance) bool {
		return lim.Tokens > 0 && b.Used.Tokens > lim.Tokens || lim.USDMicros > 0 && b.Used.USDMicros > lim.USDMicros
	}
	kinds := []string{"stall", "cut", "500"}
	var wg sync.WaitGroup
	var mu sync.Mutex
	refused, next := 0, 0
	for g := range 12 {
		rg := rand.New(rand.NewPCG(seed, uint64(g)))
		wg.Go(func() {
			for range 8 {
				mu.Lock()
				c := next
				next++
				mu.Unlock()
				kind, fails := kinds[rg.IntN(len(kinds))], rg.IntN(3)
				_, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", MaxCompletionTokens: maxOut,
					Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: fmt.Sprintf("#%s-%d-%d.", kind, fails, c)}}})
				if errors.Is(err, budget.ErrExceeded) {
					mu.Lock()
					refused++
					mu.Unlock()
				} else if err != nil && fails == 0 {
					t.Errorf("%s ×%d: %v", kind, fails, err)
				}
				if b := balance(); over(b) {
					t.Errorf("after a call of %d %s attempts: the ledger spent %+v, past its limit %+v", fails, kind, b.Used, lim)
				}
			}
		})
	}
	wg.Wait()
	synctest.Wait()
	b := balance()
	if over(b) || !b.Reserved.IsZero() || b.InFlight != 0 {
		t.Errorf("ledger used %+v (limit %+v), reserved %+v, in flight %d", b.Used, lim, b.Reserved, b.InFlight)
	}
	if refused == 0 {
		t.Errorf("no call refused: the budget did not bind")
	}
	t.Logf("%d refused, ledger %+v of %+v", refused, b.Used, lim)
}
