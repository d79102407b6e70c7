package otel_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/policies"
)

// TestSummaryCallSpanIsAChildOfTheCallThatMadeIt: the summary call a
// context compaction makes inside a call is that call's child span, as
// its attempts are; it is not a sibling in the caller's trace.
func TestSummaryCallSpanIsAChildOfTheCallThatMadeIt(t *testing.T) {
	h := newHarness(t)
	srv := openaitest.New()
	defer srv.Close()
	srv.On().Reply(openaitest.Text("A short summary."))
	p, err := policies.LoadBytes([]byte("version: 1\ncontext: {max_input_tokens: 3000, strategies: [summarise], keep_last_turns: 1, block_size: 4, summary_model: gpt-4o-mini}\n"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := goopenai.DefaultConfig("k")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = twopenai.NewHTTPClient(llmwrap.MustBuild(p, llmwrap.WithObserver(h.obs)), twopenai.WithBaseTransport(srv.Transport()))
	c := goopenai.NewClientWithConfig(cfg)
	msgs := []goopenai.ChatCompletionMessage{{Role: "system", Content: "You are terse."}, {Role: "user", Content: "Tell me a story."}}
	for i := range 6 {
		msgs = append(msgs, goopenai.ChatCompletionMessage{Role: "assistant", Content: strings.Repeat(fmt.Sprintf("word%d ", i), 500)},
			goopenai.ChatCompletionMessage{Role: "user", Content: "Go on."})
	}
	if _, err := c.CreateChatCompletion(context.Background(), goopenai.ChatCompletionRequest{Model: "gpt-4o", Messages: msgs}); err != nil {
		t.Fatal(err)
	}
	var main, summary sdktrace.ReadOnlySpan
	for _, s := range h.spans.Ended() {
		switch s.Name() {
		case "chat gpt-4o":
			main = s
		case "chat gpt-4o-mini":
			summary = s
		}
	}
	if main == nil || summary == nil {
		t.Fatalf("spans: main %v, summary %v", main != nil, summary != nil)
	}
	if summary.Parent().SpanID() != main.SpanContext().SpanID() {
		t.Errorf("the summary call's span is not a child of the call that made it")
	}
}
