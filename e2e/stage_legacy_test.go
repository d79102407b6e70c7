package e2e

import (
	"context"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/middleware"
)

// A go-openai tool loop on the legacy functions API (Functions, a
// "function" message with the result): the call that analyses a
// function's result is result_analysis, as a tool's is. It was staged
// final_answer (instrument.DetectStage knew the "tool" role only), so that
// a final_answer stage rule routed it as the user's answer.
func TestLegacyFunctionResultIsResultAnalysis(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Text("The disk is 95% full."))
	client := goClient(t, srv, mustPolicy(t, "version: 1\n"))
	ctx, run := middleware.StartRun(context.Background(), "legacy")
	_, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o",
		//lint:ignore SA1019 the legacy functions API is what this test is about
		Functions: []goopenai.FunctionDefinition{{Name: "check_disk", Parameters: map[string]any{"type": "object"}}},
		Messages: []goopenai.ChatCompletionMessage{
			{Role: "user", Content: "Check the disk."},
			{Role: "assistant", FunctionCall: &goopenai.FunctionCall{Name: "check_disk", Arguments: "{}"}},
			{Role: "function", Name: "check_disk", Content: "95% used"},
		}})
	if err != nil {
		t.Fatal(err)
	}
	if s := run.Calls()[0].Stage; s != middleware.StageResultAnalysis {
		t.Errorf("stage %s, want result_analysis", s)
	}
}
