package llmwrap_test

import (
	"context"
	"strconv"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// TestPolicyOutputCapNeverExceedsTheModels: budget.request.max_output_tokens
// is a cap for every model of the policy, sized for the largest (o3:
// 100,000). A call to gpt-4o (16,384 at most) that sets no max_tokens is
// sent with gpt-4o's own maximum, which the provider accepts, and reserved
// at it; the cap was injected as it is, and OpenAI refuses a max_tokens
// above the model's ("max_tokens is too large"), so that every such call
// failed.
func TestPolicyOutputCapNeverExceedsTheModels(t *testing.T) {
	t.Parallel()
	p := &policies.Policy{Version: 1, Name: "agents", Budget: policies.Budget{
		Request: policies.RequestBudget{MaxOutputTokens: 32_000},
		Team:    policies.TeamBudget{Period: policies.PeriodDaily, MaxUSD: policies.MicroUSD(10_000_000)},
	}}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	srv := openaitest.New()
	tooLarge := func(r *openaitest.ChatRequest) bool {
		n := r.MaxCompletionTokens
		if n == nil {
			n = r.MaxTokens
		}
		return r.Model == "gpt-4o" && n != nil && *n > 16384
	}
	srv.On(tooLarge).Reply(openaitest.Error(400, "invalid_request_error", "invalid_value",
		"max_tokens is too large: 32000. This model supports at most 16384 completion tokens, whereas you provided 32000."))
	srv.On().Reply(openaitest.Text("fine"))
	cfg := goopenai.DefaultConfig("test")
	cfg.BaseURL = "http://openai.test/v1"
	cfg.HTTPClient = twopenai.NewHTTPClient(llmwrap.MustBuild(p), twopenai.WithBaseTransport(srv.Transport()))
	client := goopenai.NewClientWithConfig(cfg)
	ctx := middleware.WithTeam(context.Background(), "sre")
	for _, model := range []string{"gpt-4o", "o3"} {
		if _, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: model,
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "check the disk"}}}); err != nil {
			t.Errorf("%s: %v", model, err)
		}
	}
	want := map[string]int{"gpt-4o": 16384, "o3": 32_000}
	for _, r := range srv.Requests() {
		n := r.Chat.MaxCompletionTokens
		if n == nil {
			n = r.Chat.MaxTokens
		}
		if n == nil || *n != want[r.Chat.Model] {
			got := "none"
			if n != nil {
				got = strconv.Itoa(*n)
			}
			t.Errorf("%s was sent max tokens %s, want %d", r.Chat.Model, got, want[r.Chat.Model])
		}
	}
}
