package e2e

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
)

// TestRequestFeesAreBilledAndReserved: a model with a fee per request on
// top of its tokens (Perplexity's sonar: $1/M input and output tokens and
// $0.005 a request) is billed the fee with each answer, and a budget
// reserves it before each call, through the real go-openai client. With
// $0.0161 for the run, two calls of 1,000 + 100 tokens cost $0.0061 each,
// fee included; the third is refused before it is sent: the $0.0039 left
// affords its tokens but not its fee, and sent it would have taken the
// run to $0.0183.
func TestRequestFeesAreBilledAndReserved(t *testing.T) {
	t.Parallel()
	p := mustPolicy(t, `version: 1
models:
  sonar: {provider: perplexity, input_per_1m: 1, output_per_1m: 1, request_fee: 0.005, context_window: 127072, max_output_tokens: 8000}
budget:
  run: {max_usd: 0.0161}
`)
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Reply{Content: "The disk is 95% full.", Usage: &openaitest.Usage{PromptTokens: 1000, CompletionTokens: 100}})
	client := goClient(t, srv, p, llmwrap.WithLogger(slog.New(slog.DiscardHandler)))
	ctx, run := middleware.StartRun(context.Background(), "fees")
	ask := func() error {
		_, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "sonar", MaxCompletionTokens: 100,
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "Why is the disk full?"}}})
		return err
	}
	const perCall = 1_100_000_000 + 5_000_000_000 // 1,100 tokens at $1/M, and the fee
	for i := range 2 {
		if err := ask(); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
		if c := run.Calls()[i]; c.CostPico != perCall {
			t.Fatalf("call %d cost %s, want %s", i+1, middleware.FormatPico(c.CostPico), middleware.FormatPico(perCall))
		}
	}
	err := ask()
	var e *budget.ExceededError
	if !errors.As(err, &e) || e.Scope != "run" {
		t.Fatalf("third call: %v, want the run budget's refusal", err)
	}
	if n := len(srv.Requests()); n != 2 {
		t.Fatalf("the provider got %d requests, want 2", n)
	}
	if spent := run.Totals().CostPico; spent != 2*perCall {
		t.Fatalf("the run spent %s, want %s", middleware.FormatPico(spent), middleware.FormatPico(2*perCall))
	}
}
