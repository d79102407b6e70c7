package langchaingo_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/tmc/langchaingo/llms"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/llmwrap/instrument"
	"github.com/tokenwise/tokenwise/middleware"
)

// fixed is an inner model that returns a fixed response without recording
// anything, so that the benchmark measures the adapter alone.
type fixed struct{ resp *llms.ContentResponse }

func (f fixed) GenerateContent(ctx context.Context, _ []llms.MessageContent, options ...llms.CallOption) (*llms.ContentResponse, error) {
	var o llms.CallOptions
	for _, opt := range options {
		opt(&o)
	}
	if o.StreamingFunc != nil {
		if err := o.StreamingFunc(ctx, []byte(f.resp.Choices[0].Content)); err != nil {
			return nil, err
		}
	}
	return f.resp, nil
}

func (f fixed) Call(ctx context.Context, prompt string, options ...llms.CallOption) (string, error) {
	return llms.GenerateFromSinglePrompt(ctx, f, prompt, options...)
}

// tenMessages is an agent conversation: system, task, and four tool turns.
func tenMessages() []llms.MessageContent {
	msgs := []llms.MessageContent{
		llms.TextParts(llms.ChatMessageTypeSystem, "You are an SRE assistant. Use the tools to diagnose the node."),
		human("db-1 is slow since 09:00, find out why."),
	}
	for i := range 4 {
		id := fmt.Sprintf("call_%d", i)
		msgs = append(msgs,
			llms.MessageContent{Role: llms.ChatMessageTypeAI, Parts: []llms.ContentPart{llms.ToolCall{ID: id, Type: "function",
				FunctionCall: &llms.FunctionCall{Name: "check_disk", Arguments: `{"path":"/var/lib/postgresql"}`}}}},
			llms.MessageContent{Role: llms.ChatMessageTypeTool, Parts: []llms.ContentPart{llms.ToolCallResponse{ToolCallID: id,
				Content: "Filesystem 95% used, 12 GiB free, iowait 35%"}}})
	}
	return msgs
}

// BenchmarkRoundTrip10Messages: one GenerateContent through the adapter and
// a pass-through middleware to a stub inner model (no HTTP), for a
// 10-message request with options.
func BenchmarkRoundTrip10Messages(b *testing.B) {
	inner := fixed{resp: textResponse("The disk is almost full: clean up WAL archives.", 900, 40)}
	for _, bc := range []struct {
		name string
		mw   middleware.Middleware
		opts []llms.CallOption
	}{
		{"passthrough", passThrough, []llms.CallOption{llms.WithTemperature(0), llms.WithMaxTokens(256)}},
		{"instrumented", instrument.New(nil, nil), []llms.CallOption{llms.WithTemperature(0), llms.WithMaxTokens(256)}},
		{"streaming", passThrough, []llms.CallOption{llms.WithStreamingFunc(func(context.Context, []byte) error { return nil })}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			llm := twlc.New(twlc.Models{"gpt-4o-mini": inner}, bc.mw)
			msgs := tenMessages()
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := llm.GenerateContent(ctx, msgs, bc.opts...); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
