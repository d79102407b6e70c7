package e2e

import (
	"context"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/middleware"
)

// A stream the router holds back (the cheap model's draft under
// regenerate_final) reaches no caller: cut after its first chunks, it is
// retried as a stream cut before its first chunk is. The chunks the router
// held counted as delivered, so that the cut ended the call.
func TestHeldStreamCutIsRetried(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.On(openaitest.Model("gpt-4o-mini")).Reply(openaitest.Reply{Content: "cheap draft answer", ChunkSize: 3,
		Fault: openaitest.Fault{Kind: openaitest.FaultCut, After: 2}}, openaitest.Reply{Content: "cheap draft answer", ChunkSize: 3})
	srv.On(openaitest.Model("gpt-4o")).Reply(openaitest.Reply{Content: "Strong answer.", ChunkSize: 3})
	client := goClient(t, srv, mustPolicy(t, regenPolicy+"fallback: {retry: {max_attempts: 2, base_delay: 1ms}}\n"))
	ctx, _ := middleware.StartRun(context.Background(), "held")
	got, err := streamText(ctx, client, goopenai.ChatCompletionRequest{Model: "gpt-4o",
		Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "I'm out of disk space."}}, Tools: diskTools})
	if err != nil {
		t.Fatalf("%v (upstream %s)", err, join(upstreamModels(srv)))
	}
	if got != "Strong answer." {
		t.Fatalf("streamed %q", got)
	}
	if ms := join(upstreamModels(srv)); ms != "gpt-4o-mini,gpt-4o-mini,gpt-4o" {
		t.Errorf("upstream %s", ms)
	}
}
