package e2e

import (
	"context"
	"testing"

	"github.com/tmc/langchaingo/llms"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/policies"
)

// TestAnswerEndedByItsEndOfSequenceIsKept: an answer whose finish_reason
// is a server's own name for the model's natural end — Together's "eos",
// text-generation-inference's "eos_token" (before 2.2.1) and
// "stop_sequence" — is a complete answer, as "stop" is: the cache keeps
// it, and the identical second call, through go-openai (plain and
// streamed) and through langchaingo, is a hit. Before, only "stop",
// "tool_calls" and "function_call" counted as an end: every answer of
// such a server was taken for an unfinished one, never kept (and failed
// the cascade's finish_reason check).
func TestAnswerEndedByItsEndOfSequenceIsKept(t *testing.T) {
	for _, finish := range []string{"eos", "eos_token", "stop_sequence"} {
		t.Run(finish, func(t *testing.T) {
			srv := openaitest.NewServer(t)
			srv.On().Reply(openaitest.Reply{Content: "The disks are fine.", FinishReason: finish})
			chain := llmwrap.MustBuild(cachePolicy(policies.Cache{}))
			client := goOpenAI(t, srv, chain, nil)
			for range 2 {
				resp, err := client.CreateChatCompletion(context.Background(), chatRequest("q plain"))
				if err != nil || resp.Choices[0].Message.Content != "The disks are fine." || string(resp.Choices[0].FinishReason) != finish {
					t.Fatalf("go-openai: %+v, %v", resp, err)
				}
			}
			if c := srv.Count(); c != 1 {
				t.Errorf("go-openai, plain: %d provider requests for two identical calls, want 1 (a hit)", c)
			}
			for range 2 {
				req := chatRequest("q stream")
				req.Stream = true
				s, err := client.CreateChatCompletionStream(context.Background(), req)
				if err != nil {
					t.Fatal(err)
				}
				var text, reason string
				for {
					c, err := s.Recv()
					if err != nil {
						break
					}
					if len(c.Choices) > 0 {
						text += c.Choices[0].Delta.Content
						reason = string(c.Choices[0].FinishReason) + reason
					}
				}
				s.Close()
				if text != "The disks are fine." || reason != finish {
					t.Fatalf("go-openai, streamed: %q, finish %q", text, reason)
				}
			}
			if c := srv.Count(); c != 2 {
				t.Errorf("go-openai, streamed: %d provider requests after two identical streams, want 2 (the second a hit)", c)
			}
			llm := langchaingo(t, srv, chain, "gpt-4o-mini")
			for range 2 {
				if _, err := llm.GenerateContent(context.Background(), []llms.MessageContent{llms.TextParts(llms.ChatMessageTypeHuman, "q langchaingo")},
					llms.WithSeed(42)); err != nil {
					t.Fatal(err)
				}
			}
			if c := srv.Count(); c != 3 {
				t.Errorf("langchaingo: %d provider requests after two identical calls, want 3 (the second a hit)", c)
			}
		})
	}
}
