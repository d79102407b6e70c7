package e2e

import (
	"context"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/policies"
)

// TestDefaultPolicyNeverFallsBackToADearerModel: the embedded default
// policy's fallback chain (gpt-4o-mini, fallback.never_dearer) moves a
// failed call of gpt-4o to the cheaper gpt-4o-mini, and never a failed
// call of a cheaper model (gpt-4.1-nano: $0.10/$0.40 per 1M beside
// gpt-4o-mini's $0.15/$0.60) to gpt-4o-mini: that caller gets its own
// model's error. Before, every caller's failed call moved there.
func TestDefaultPolicyNeverFallsBackToADearerModel(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.On(openaitest.Model("gpt-4.1-nano")).Reply(openaitest.InsufficientQuota())
	srv.On(openaitest.Model("gpt-4o")).Reply(openaitest.InsufficientQuota())
	srv.On().Reply(openaitest.Text("ok"))
	client := goClient(t, srv, policies.Default())
	ask := func(model string) (string, error) {
		resp, err := client.CreateChatCompletion(context.Background(), goopenai.ChatCompletionRequest{Model: model,
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "hello"}}})
		if err != nil {
			return "", err
		}
		return resp.Choices[0].Message.Content, nil
	}
	if _, err := ask("gpt-4.1-nano"); err == nil {
		t.Fatal("a failed call of gpt-4.1-nano was answered: moved to another model")
	}
	for _, m := range upstreamModels(srv) {
		if m != "gpt-4.1-nano" {
			t.Fatalf("upstream models %v: a failed call of gpt-4.1-nano was moved to the dearer %s", upstreamModels(srv), m)
		}
	}
	if got, err := ask("gpt-4o"); err != nil || got != "ok" {
		t.Fatalf("a failed call of gpt-4o: %q %v, want it answered by gpt-4o-mini", got, err)
	}
	if ms := upstreamModels(srv); ms[len(ms)-1] != "gpt-4o-mini" {
		t.Fatalf("upstream models %v: gpt-4o's failed call did not move to gpt-4o-mini", ms)
	}
}
