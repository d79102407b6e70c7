package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/llmwrap/retry"
	"github.com/tokenwise/tokenwise/middleware"
)

// TestStandaloneBudgetsPlaceBesideRetry: layers composed by hand (README's
// "Packages"), a budget's Middleware without the chain's meter and a
// retry layer, over go-openai's transport, two answers cut after their 200
// (each billed by the provider): the budget below the retry (nearer the
// provider) charges each request sent, and so does one above it, which the
// retry layer tells of each attempt (middleware.AttemptNoter). (Before, the
// budget above charged one: 39 µ$ of the 306 µ$ billed.)
func TestStandaloneBudgetsPlaceBesideRetry(t *testing.T) {
	prompt := strings.Repeat("Check the disks. ", 200)
	spent := func(t *testing.T, below bool) int64 {
		srv := openaitest.New()
		cut := openaitest.Reply{Content: strings.Repeat("ok ", 300), Fault: openaitest.Fault{Kind: openaitest.FaultCut}}
		srv.On().Reply(cut)
		srv.On().Reply(cut)
		p := dailyTeamPolicy()
		store := budget.NewMemoryStore()
		b, err := llmwrap.NewBudget(p, budget.WithStore(store))
		if err != nil {
			t.Fatal(err)
		}
		rt, err := retry.New(retry.Config{MaxAttempts: 2, BaseDelay: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		chain := middleware.Chain(b.Middleware(), rt.Middleware())
		if below {
			chain = middleware.Chain(rt.Middleware(), b.Middleware())
		}
		cfg := goopenai.DefaultConfig("test-key")
		cfg.BaseURL = "http://openai.test/v1"
		cfg.HTTPClient = twopenai.NewHTTPClient(chain, twopenai.WithBaseTransport(srv.Transport()))
		_, err = goopenai.NewClientWithConfig(cfg).CreateChatCompletion(middleware.WithTeam(context.Background(), "sre"),
			goopenai.ChatCompletionRequest{Model: "gpt-4o", MaxCompletionTokens: 2000,
				Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: prompt}}})
		if err == nil {
			t.Fatal("two cut answers: no error")
		}
		if n := len(srv.Requests()); n != 2 {
			t.Fatalf("%d requests sent, want 2", n)
		}
		return ledgerSpent(t, p, store, "sre")
	}
	above, below := spent(t, false), spent(t, true)
	if below <= 0 || above != below {
		t.Fatalf("budget above the retry charged %d µ$, below it %d µ$; want each request sent charged in both places", above, below)
	}
}
