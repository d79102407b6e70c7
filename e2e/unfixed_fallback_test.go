package e2e

import (
	"context"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/policies"
)

// TestDefaultPolicyNeverFallsBackToADearerModel: README said of the
// embedded default policy that "its fallback chain moves a failed call to
// gpt-4o-mini, never to a dearer model". fallback.models: [gpt-4o-mini]
// moves every caller's failed call there: a caller of gpt-4.1-nano
// ($0.10/$0.40 per 1M) is answered by gpt-4o-mini ($0.15/$0.60), and a
// caller of a local model (free) is sent to gpt-4o-mini too. The policy
// language has no way to say "only to a cheaper model".
func TestDefaultPolicyNeverFallsBackToADearerModel(t *testing.T) {
	t.Skip("unfixed: the default policy's fallback moves callers of cheaper models to gpt-4o-mini")
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.On(openaitest.Model("gpt-4.1-nano")).Reply(openaitest.InsufficientQuota())
	srv.On().Reply(openaitest.Text("ok"))
	client := goClient(t, srv, policies.Default())
	_, _ = client.CreateChatCompletion(context.Background(), goopenai.ChatCompletionRequest{Model: "gpt-4.1-nano",
		Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "hello"}}})
	for _, m := range upstreamModels(srv) {
		if m == "gpt-4o-mini" {
			t.Fatalf("upstream models %v: a failed call of gpt-4.1-nano was moved to the dearer gpt-4o-mini", upstreamModels(srv))
		}
	}
}
