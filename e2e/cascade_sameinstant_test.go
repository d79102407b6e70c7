package e2e

import (
	"context"
	"testing"
	"testing/synctest"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
)

// A cascade's cheap model whose step timeout (timeouts.call, or
// first_token for a stream) ends at the same instant as the call's total
// is not followed by the strong model: it would be asked, and billed, at
// the call's deadline. The context's own timer fires at that instant too,
// and its goroutine may not have run when the step fails, so each round
// plays the race once more.
func TestCascadeDoesNotEscalateAtTheCallsDeadline(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "chat", true: "stream"}[stream], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := mustPolicy(t, cascadePolicy+"timeouts: {first_token: 30s, call: 30s, total: 30s}\nfallback:\n  retry: {max_attempts: 1}\n")
				chain := llmwrap.MustBuild(p)
				for round := range 100 {
					srv := openaitest.New()
					srv.On().Reply(openaitest.Stall())
					c := rlClient(srv, chain)
					req := goopenai.ChatCompletionRequest{Model: "gpt-4o-mini",
						Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "check the disk"}}}
					var err error
					if stream {
						s, err2 := c.CreateChatCompletionStream(context.Background(), req)
						if err2 == nil {
							_, err2 = s.Recv()
							s.Close()
						}
						err = err2
					} else {
						_, err = c.CreateChatCompletion(context.Background(), req)
					}
					srv.Close()
					if got := join(models(srv)); got != "gpt-4o-mini" {
						t.Fatalf("round %d: upstream models %s, want only gpt-4o-mini: no step is sent at the call's deadline", round, got)
					}
					if err == nil {
						t.Fatalf("round %d: no error from a call whose only step stalled past its deadline", round)
					}
				}
			})
		})
	}
}
