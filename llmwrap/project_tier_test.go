package llmwrap_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
	"github.com/tokenwise/tokenwise/tokens"
)

// TestProjectDefaultTierIsNeverOverspent: an OpenAI project whose default
// service tier is priority bills a request that names no tier (or "auto")
// at the priority rates, and its answer says so ("service_tier":
// "priority"). With budget.default_service_tier: priority, the budget
// reserves such a request at those rates: a run budget that affords the
// standard worst case but not the priority one refuses the call instead of
// settling it over the limit (reserved at the standard rates, it was
// overspent).
func TestProjectDefaultTierIsNeverOverspent(t *testing.T) {
	t.Parallel()
	question := strings.Repeat("disk ", 1000)
	in := tokens.New().Request("gpt-4o", &middleware.Request{Model: "gpt-4o", Messages: []middleware.Message{{Role: middleware.RoleUser, Content: question}}})
	standard := in*2_500_000 + 10*10_000_000 // pico-dollars: gpt-4o's standard rates, 10 output tokens
	priority := in*4_250_000 + 10*17_000_000 // its priority rates
	limit := (standard + priority) / 2 / 1_000_000
	p := &policies.Policy{Version: 1, Name: "tiers", Budget: policies.Budget{
		Request:            policies.RequestBudget{MaxOutputTokens: 10},
		Run:                policies.RunBudget{MaxUSD: policies.MicroUSD(limit)},
		DefaultServiceTier: "priority",
	}}
	srv := openaitest.New()
	srv.On().Reply(openaitest.Reply{Raw: [][]byte{fmt.Appendf(nil, `{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o","service_tier":"priority",`+
		`"choices":[{"index":0,"message":{"role":"assistant","content":"fine"},"finish_reason":"stop"}],`+
		`"usage":{"prompt_tokens":%d,"completion_tokens":10,"total_tokens":%d}}`, in, in+10)}})
	cfg := goopenai.DefaultConfig("test")
	cfg.BaseURL = "http://openai.test/v1"
	cfg.HTTPClient = twopenai.NewHTTPClient(llmwrap.MustBuild(p), twopenai.WithBaseTransport(srv.Transport()))
	client := goopenai.NewClientWithConfig(cfg)
	ctx, run := middleware.StartRun(context.Background(), "tier")
	_, _ = client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o",
		Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: question}}})
	if spent := run.Totals().CostPico; spent > limit*1_000_000 {
		t.Errorf("the run spent %s of its %s budget", middleware.FormatPico(spent), middleware.FormatPico(limit*1_000_000))
	}
}
