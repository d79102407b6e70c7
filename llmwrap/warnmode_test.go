package llmwrap_test

import (
	"context"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// TestWarnModeNeverShortensAnAnswer: on_exceed: warn lets every call
// through as the caller wrote it and only reports what it would have
// refused. A call the team budget cannot afford whole but could afford
// shortened (max_tokens lowered to what is left, as reject mode fits it)
// used to be shortened all the same: a budget in warn mode cut answers
// near its limit, and not beyond it.
func TestWarnModeNeverShortensAnAnswer(t *testing.T) {
	t.Parallel()
	p := &policies.Policy{Version: 1, Name: "shadow", Budget: policies.Budget{
		Request:  policies.RequestBudget{MaxOutputTokens: 1000},
		Team:     policies.TeamBudget{Period: policies.PeriodDaily, MaxTokens: 2000},
		OnExceed: policies.OnExceedWarn,
	}}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	srv := openaitest.New()
	srv.On().Reply(openaitest.Reply{Content: "ok", Usage: &openaitest.Usage{PromptTokens: 1400, CompletionTokens: 100}})
	cfg := goopenai.DefaultConfig("test")
	cfg.BaseURL = "http://openai.test/v1"
	cfg.HTTPClient = twopenai.NewHTTPClient(llmwrap.MustBuild(p), twopenai.WithBaseTransport(srv.Transport()))
	client := goopenai.NewClientWithConfig(cfg)
	var actions []string
	ctx := middleware.WithObserver(middleware.WithTeam(context.Background(), "sre"), middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
		if x, ok := e.(middleware.BudgetExceeded); ok {
			actions = append(actions, x.Action)
		}
	}))
	for i := range 3 { // 1500 tokens, then 500 left of 2000, then none
		if _, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o",
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "check the disk"}}}); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
	}
	for i, r := range srv.Requests() {
		n := r.Chat.MaxCompletionTokens
		if n == nil {
			n = r.Chat.MaxTokens
		}
		if n == nil || *n != 1000 {
			t.Errorf("call %d was sent max tokens %v, want the policy's 1000", i+1, deref(n))
		}
	}
	if len(actions) != 2 || actions[0] != string(budget.OnExceedWarn) || actions[1] != string(budget.OnExceedWarn) {
		t.Errorf("BudgetExceeded actions %q, want two warnings", actions)
	}
}

func deref(n *int) any {
	if n == nil {
		return "none"
	}
	return *n
}
