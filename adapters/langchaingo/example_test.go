package langchaingo_test

import (
	"context"
	"fmt"

	"github.com/tmc/langchaingo/llms"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/llmwrap/instrument"
	"github.com/tokenwise/tokenwise/middleware"
)

// echoModel stands in for a real langchaingo backend (openai.New(...)): it
// answers with the model it was asked for and reports usage as the openai
// backend does.
type echoModel struct{}

func (echoModel) GenerateContent(_ context.Context, msgs []llms.MessageContent, options ...llms.CallOption) (*llms.ContentResponse, error) {
	var o llms.CallOptions
	for _, opt := range options {
		opt(&o)
	}
	return &llms.ContentResponse{Choices: []*llms.ContentChoice{{
		Content:        "answered by " + o.Model,
		StopReason:     "stop",
		GenerationInfo: map[string]any{"PromptTokens": 12 * len(msgs), "CompletionTokens": 3, "TotalTokens": 12*len(msgs) + 3},
	}}}, nil
}

func (m echoModel) Call(ctx context.Context, prompt string, options ...llms.CallOption) (string, error) {
	return llms.GenerateFromSinglePrompt(ctx, m, prompt, options...)
}

// A Model is an llms.Model whose calls run through a tokenwise chain: here
// an instrumented one with a router that sends short conversations to the
// cheap model.
func ExampleNew() {
	cheapForShort := func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			if len(req.Messages) < 3 {
				req = req.Clone()
				req.Model = "gpt-4o-mini"
			}
			return next.Handle(ctx, req)
		})
	}
	llm := twlc.New(twlc.Models{"gpt-4o": echoModel{}, "gpt-4o-mini": echoModel{}},
		middleware.Chain(instrument.New(nil, nil), cheapForShort),
		twlc.WithDefaultModel("gpt-4o"))

	ctx, run := middleware.StartRun(context.Background(), "ticket-4711")
	short, _ := llms.GenerateFromSinglePrompt(ctx, llm, "Is db-1 up?")
	long, _ := llm.GenerateContent(ctx, []llms.MessageContent{
		llms.TextParts(llms.ChatMessageTypeSystem, "You are an SRE."),
		llms.TextParts(llms.ChatMessageTypeHuman, "db-1 is slow."),
		llms.TextParts(llms.ChatMessageTypeAI, "Since when?"),
		llms.TextParts(llms.ChatMessageTypeHuman, "09:00."),
	})
	fmt.Println(short)
	fmt.Println(long.Choices[0].Content, long.Choices[0].GenerationInfo["PromptTokens"])
	for _, c := range run.Calls() {
		fmt.Println(c.Seq, c.Model, c.Usage.InputTokens, c.Usage.OutputTokens)
	}
	// Output:
	// answered by gpt-4o-mini
	// answered by gpt-4o 48
	// 1 gpt-4o-mini 12 3
	// 2 gpt-4o 48 3
}

// UsageFromGenerationInfo reads any backend's usage keys; Anthropic's input
// count excludes its cache, the core's includes it.
func ExampleUsageFromGenerationInfo() {
	u, _ := twlc.UsageFromGenerationInfo(map[string]any{
		"InputTokens": 50, "OutputTokens": 30, "CacheReadInputTokens": 1000, "CacheCreationInputTokens": 0,
	})
	fmt.Printf("in=%d cached=%d out=%d\n", u.InputTokens, u.CachedInputTokens, u.OutputTokens)
	// Output:
	// in=1050 cached=1000 out=30
}
