package langchaingo_test

import (
	"testing"

	"github.com/tmc/langchaingo/llms"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap/cache"
)

// The tests of this file play event streams byte for byte to langchaingo's
// own openai client, over HTTP, through twlc.NewTransport: the shapes real
// servers send that the backend alone reads wrongly.

// rawStream is a Reply that sends the data lines as they are, one event
// each.
func rawStream(lines ...string) openaitest.Reply {
	pieces := make([][]byte, len(lines))
	for i, l := range lines {
		pieces[i] = []byte(l + "\n\n")
	}
	return openaitest.Reply{Raw: pieces}
}

const (
	wireHi   = `data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":null}]}`
	wireStop = `data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`
	wireDone = `data: [DONE]`
)

// TestEntryAfterTheFinishKeepsTheStreamComplete: a choice-0 entry with
// finish_reason null after the finishing chunk (Azure's asynchronous
// content filter annotation; a usage chunk that carries an empty choice)
// leaves a complete stream complete: the call succeeds with its finish
// reason and usage, and the cache keeps the answer. (The backend copies
// every entry's finish_reason, the null included, and the adapter took the
// answer for a cut one.)
func TestEntryAfterTheFinishKeepsTheStreamComplete(t *testing.T) {
	const annotation = `data: {"choices":[{"content_filter_offsets":{"check_offset":0,"start_offset":0,"end_offset":2},"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}},"finish_reason":null,"index":0}],"created":0,"id":"","model":"","object":""}`
	const usage = `data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}`
	const usageWithChoice = `data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":null}],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}`
	for name, reply := range map[string]openaitest.Reply{
		"azure annotation":           rawStream(wireHi, wireStop, annotation, usage, wireDone),
		"usage with an empty choice": rawStream(wireHi, wireStop, usageWithChoice, wireDone),
		"annotation, no [DONE]":      rawStream(wireHi, wireStop, annotation, usage),
	} {
		t.Run(name, func(t *testing.T) {
			srv := openaitest.NewServer(t)
			srv.On().Reply(reply)
			c, err := cache.New(cache.Config{})
			if err != nil {
				t.Fatal(err)
			}
			llm := twlc.New(twlc.Models{"gpt-4o": newOpenAI(t, srv, "gpt-4o", true)}, c.Middleware())
			for i := range 2 {
				resp, err := llm.GenerateContent(t.Context(), []llms.MessageContent{human("hello")}, streaming(), llms.WithTemperature(0))
				if err != nil {
					t.Fatalf("call %d: %v: a complete stream failed", i, err)
				}
				ch := resp.Choices[0]
				if ch.Content != "hi" || ch.StopReason != "stop" {
					t.Fatalf("call %d: content %q, finish %q; want \"hi\", \"stop\"", i, ch.Content, ch.StopReason)
				}
				if u, ok := twlc.UsageFromGenerationInfo(ch.GenerationInfo); !ok || u.InputTokens != 12 || u.OutputTokens != 5 {
					t.Fatalf("call %d: usage %+v (%v), want 12 + 5", i, u, ok)
				}
			}
			if srv.Count() != 1 {
				t.Fatalf("%d provider calls, want 1: the complete answer was not cached", srv.Count())
			}
		})
	}
}
