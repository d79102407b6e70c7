package langchaingo_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/tmc/langchaingo/llms"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/middleware"
)

// TestUsageFromGenerationInfo covers the GenerationInfo of every backend of
// langchaingo v0.1.14, as each writes it, and the number types usage takes
// after JSON or in other SDKs.
func TestUsageFromGenerationInfo(t *testing.T) {
	type U = middleware.Usage
	type mistralUsage struct{ PromptTokens, CompletionTokens, TotalTokens int }
	cases := []struct {
		name string
		info map[string]any
		want U
		ok   bool
	}{
		{"openai", map[string]any{
			"CompletionTokens": 120, "PromptTokens": 1000, "TotalTokens": 1120, "ReasoningTokens": 64, "PromptAudioTokens": 0,
			"ThinkingContent": "", "ThinkingTokens": 64, "PromptCachedTokens": 768, "CompletionAudioTokens": 0,
			"CompletionReasoningTokens": 64, "CompletionAcceptedPredictionTokens": 0, "CompletionRejectedPredictionTokens": 0,
		}, U{InputTokens: 1000, OutputTokens: 120, CachedInputTokens: 768, ReasoningTokens: 64}, true},
		{"openai audio", map[string]any{
			"CompletionTokens": 400, "PromptTokens": 500, "TotalTokens": 900, "ReasoningTokens": 0, "PromptAudioTokens": 300,
			"ThinkingContent": "", "ThinkingTokens": 0, "PromptCachedTokens": 0, "CompletionAudioTokens": 350,
			"CompletionReasoningTokens": 0, "CompletionAcceptedPredictionTokens": 0, "CompletionRejectedPredictionTokens": 0,
		}, U{InputTokens: 500, OutputTokens: 400, AudioInputTokens: 300, AudioOutputTokens: 350}, true},
		{"anthropic: input excludes the cache", map[string]any{
			"InputTokens": 50, "OutputTokens": 30, "CacheCreationInputTokens": 200, "CacheReadInputTokens": 1000,
			"ThinkingContent": "", "OutputContent": "hi",
		}, U{InputTokens: 1250, OutputTokens: 30, CachedInputTokens: 1000, CacheWriteTokens: 200}, true},
		{"googleai int32", map[string]any{
			"citations": nil, "safety": nil,
			"input_tokens": int32(900), "output_tokens": int32(40), "total_tokens": int32(940),
			"PromptTokens": int32(900), "CompletionTokens": int32(40), "TotalTokens": int32(940),
			"CachedTokens": int32(512), "CacheReadInputTokens": int32(512), "NonCachedInputTokens": int32(388),
			"ThinkingContent": "", "ThinkingTokens": 0,
		}, U{InputTokens: 900, OutputTokens: 40, CachedInputTokens: 512}, true},
		{"googleai thinking: the total counts the thoughts, billed as output", map[string]any{
			"input_tokens": int32(900), "output_tokens": int32(40), "total_tokens": int32(1340),
			"PromptTokens": int32(900), "CompletionTokens": int32(40), "TotalTokens": int32(1340), "ThinkingTokens": 0,
		}, U{InputTokens: 900, OutputTokens: 440}, true},
		{"xai through the openai backend: reasoning outside completion", map[string]any{
			"CompletionTokens": 9, "PromptTokens": 32, "TotalTokens": 135, "ReasoningTokens": 94,
		}, U{InputTokens: 32, OutputTokens: 103, ReasoningTokens: 94}, true},
		{"reasoning beyond the completion, no total", map[string]any{"CompletionTokens": 9, "PromptTokens": 32, "ReasoningTokens": 94},
			U{InputTokens: 32, OutputTokens: 103, ReasoningTokens: 94}, true},
		{"ollama", map[string]any{
			"CompletionTokens": 7, "PromptTokens": 26, "TotalTokens": 33, "ThinkingContent": "", "ThinkingTokens": 0,
			"CachedTokens": 4096, "CacheHit": true, // context cache: bounded by the prompt
		}, U{InputTokens: 26, OutputTokens: 7, CachedInputTokens: 26}, true},
		{"maritaca", map[string]any{"CompletionTokens": 5, "PromptTokens": 9, "TotalTokens": 14}, U{InputTokens: 9, OutputTokens: 5}, true},
		{"bedrock", map[string]any{"input_tokens": 12, "output_tokens": 3}, U{InputTokens: 12, OutputTokens: 3}, true},
		{"mistral struct", map[string]any{"created": 1, "model": "mistral-large", "usage": mistralUsage{PromptTokens: 11, CompletionTokens: 6, TotalTokens: 17}},
			U{InputTokens: 11, OutputTokens: 6}, true},
		{"mistral pointer", map[string]any{"usage": &mistralUsage{PromptTokens: 2, CompletionTokens: 1}}, U{InputTokens: 2, OutputTokens: 1}, true},
		{"after JSON: float64", jsonRoundTrip(t, map[string]any{"PromptTokens": 1000, "CompletionTokens": 120, "PromptCachedTokens": 768, "ReasoningTokens": 64}),
			U{InputTokens: 1000, OutputTokens: 120, CachedInputTokens: 768, ReasoningTokens: 64}, true},
		{"nested JSON object", jsonRoundTrip(t, map[string]any{"usage": map[string]any{"prompt_tokens": 4, "completion_tokens": 2}}),
			U{InputTokens: 4, OutputTokens: 2}, true},
		{"int64, uint, json.Number, string", map[string]any{
			"PromptTokens": int64(10), "CompletionTokens": uint(3), "PromptCachedTokens": json.Number("4"), "ReasoningTokens": "1",
		}, U{InputTokens: 10, OutputTokens: 3, CachedInputTokens: 4, ReasoningTokens: 1}, true},
		{"no usage (cohere)", map[string]any{"generation_id": "x", "index": 0}, U{}, false},
		{"a negative count is no usage", map[string]any{"PromptTokens": -1000000, "CompletionTokens": 5}, U{}, false},
		{"a negative nested count", map[string]any{"usage": mistralUsage{PromptTokens: 11, CompletionTokens: -6}}, U{}, false},
		{"a negative cache read (anthropic)", map[string]any{"InputTokens": 50, "OutputTokens": 30, "CacheReadInputTokens": -1000}, U{}, false},
		{"nil", nil, U{}, false},
		{"unusable values", map[string]any{"PromptTokens": "many", "CompletionTokens": nil}, U{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := twlc.UsageFromGenerationInfo(tc.info)
			if got != tc.want || ok != tc.ok {
				t.Errorf("got %+v %v, want %+v %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func jsonRoundTrip(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRewrittenUsage: when a middleware changes an answer's usage, the
// caller's GenerationInfo reports the new counts in the backend's keys and
// in the openai backend's, and keeps its other keys.
func TestRewrittenUsage(t *testing.T) {
	in := &stub{resp: &llms.ContentResponse{Choices: []*llms.ContentChoice{{Content: "hi", StopReason: "end_turn",
		GenerationInfo: map[string]any{"InputTokens": 10, "OutputTokens": 5, "CacheReadInputTokens": 0, "CacheCreationInputTokens": 0, "ThinkingSignature": "sig"}}}}}
	double := func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			resp, err := next.Handle(ctx, req)
			if err != nil {
				return nil, err
			}
			r := resp.Clone()
			r.Usage = r.Usage.Add(middleware.Usage{InputTokens: 100, OutputTokens: 7, CachedInputTokens: 60})
			return r, nil
		})
	}
	resp, err := twlc.New(twlc.Models{"claude": in}, double).GenerateContent(t.Context(), []llms.MessageContent{human("q")})
	if err != nil {
		t.Fatal(err)
	}
	info := resp.Choices[0].GenerationInfo
	want := map[string]any{
		"InputTokens": 50, "OutputTokens": 12, "CacheReadInputTokens": 60, "CacheCreationInputTokens": 0, "ThinkingSignature": "sig",
		"PromptTokens": 110, "CompletionTokens": 12, "TotalTokens": 122, "PromptCachedTokens": 60, "ReasoningTokens": 0,
	}
	if !reflect.DeepEqual(info, want) {
		t.Errorf("GenerationInfo %v\nwant %v", info, want)
	}
	if u, _ := twlc.UsageFromGenerationInfo(info); u != (middleware.Usage{InputTokens: 110, OutputTokens: 12, CachedInputTokens: 60}) {
		t.Errorf("reads back as %+v", u)
	}
	if resp.Choices[0].StopReason != "stop" || in.resp.Choices[0].GenerationInfo["InputTokens"] != 10 {
		t.Errorf("stop reason %q; inner info %v", resp.Choices[0].StopReason, in.resp.Choices[0].GenerationInfo)
	}
}
