package toolwrap_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	openai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/toolwrap"
)

// A whole agent turn, to put the executor's figure in proportion: the
// model's call (go-openai over HTTP against a scripted server on the
// loopback that answers at once with 8 tool calls, so with none of a
// provider's own latency) alone, and followed by running its 8 instant
// tools.
func BenchmarkAgentTurnEightInstantTools(b *testing.B) {
	ts, _ := instantTools(8)
	var tcs []openai.ToolCall
	for i := range 8 {
		tcs = append(tcs, openai.ToolCall{ID: "call_" + strconv.Itoa(i), Type: openai.ToolTypeFunction,
			Function: openai.FunctionCall{Name: "t" + strconv.Itoa(i), Arguments: "{}"}})
	}
	answer, err := json.Marshal(openai.ChatCompletionResponse{ID: "chatcmpl-1", Object: "chat.completion", Model: "gpt-4o-mini",
		Choices: []openai.ChatCompletionChoice{{Message: openai.ChatCompletionMessage{Role: "assistant", ToolCalls: tcs}, FinishReason: openai.FinishReasonToolCalls}},
		Usage:   openai.Usage{PromptTokens: 100, CompletionTokens: 80, TotalTokens: 180}})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	}))
	defer srv.Close()
	cfg := openai.DefaultConfig("sk-test")
	cfg.BaseURL = srv.URL + "/v1"
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	cfg.HTTPClient = &http.Client{Transport: tr}
	client := openai.NewClientWithConfig(cfg)
	req := openai.ChatCompletionRequest{Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "run the tools"}}}
	for _, bc := range []struct {
		name  string
		tools bool
		par   int
	}{{"llm_call_only", false, 0}, {"llm_call_then_tools_parallel", true, 8}, {"llm_call_then_tools_sequential", true, 1}} {
		b.Run(bc.name, func(b *testing.B) {
			ex, err := toolwrap.New(ts, toolwrap.Config{MaxParallel: bc.par})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				resp, err := client.CreateChatCompletion(ctx, req)
				if err != nil || len(resp.Choices) != 1 || len(resp.Choices[0].Message.ToolCalls) != 8 {
					b.Fatalf("%+v, %v", resp, err)
				}
				if !bc.tools {
					continue
				}
				calls := make([]middleware.ToolCall, 8)
				for i, tc := range resp.Choices[0].Message.ToolCalls {
					calls[i] = middleware.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments}
				}
				res, err := ex.Execute(ctx, calls)
				if err != nil || len(res) != 8 || res[7].Content != "ok" {
					b.Fatalf("%+v, %v", res, err)
				}
			}
		})
	}
}
