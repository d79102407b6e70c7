package e2e

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"
	"github.com/tmc/langchaingo/llms"
	lcopenai "github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
	"github.com/tokenwise/tokenwise/tokens"
)

// laggingUsageStream is a stream whose server reports a running usage
// (vLLM's continuous usage stats) that lags behind what it streams: the
// usage of its first token (10 input, 1 output), then 20 chunks of text
// without one, then the connection ends, without [DONE]. It returns the
// stream and the text it streamed.
func laggingUsageStream() (openaitest.Reply, string) {
	const head = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":`
	piece := strings.Repeat("The disk of web-1 is healthy. ", 4)
	raw := [][]byte{
		[]byte(head + `"","role":"assistant"},"finish_reason":null}],"usage":{"prompt_tokens":10,"completion_tokens":0,"total_tokens":10}}` + "\n\n"),
		[]byte(head + `"` + piece + `"},"finish_reason":null}],"usage":{"prompt_tokens":10,"completion_tokens":1,"total_tokens":11}}` + "\n\n"),
	}
	for range 19 {
		raw = append(raw, []byte(head+`"`+piece+`"},"finish_reason":null}]}`+"\n\n"))
	}
	return openaitest.Reply{Raw: raw}, strings.Repeat(piece, 20)
}

// TestCutStreamWithLaggingUsageBillsWhatItStreamed: a stream cut after
// its last reported usage (1 output token) streamed 20 chunks more. The
// provider bills what it produced: at least the streamed text's tokens
// (o200k_base, exact for gpt-4o). The call is billed its reported input
// and that output — not the lagging count — in the report and the team
// ledger alike, through go-openai and langchaingo (NewTransport). Before,
// it was billed the 1 output token the usage said.
func TestCutStreamWithLaggingUsageBillsWhatItStreamed(t *testing.T) {
	for _, client := range []string{"go-openai", "langchaingo"} {
		t.Run(client, func(t *testing.T) {
			reply, streamed := laggingUsageStream()
			want := 10*2_500_000 + tokens.New().Text("gpt-4o", streamed)*10_000_000 // pico-USD at gpt-4o's $2.50/$10 per 1M
			srv := openaitest.New()
			srv.On().Reply(reply)
			p := dailyTeamPolicy()
			store := budget.NewMemoryStore()
			var cost atomic.Int64
			ctx := middleware.WithTeam(context.Background(), "sre")
			var err error
			got := 0
			if client == "go-openai" {
				var s *goopenai.ChatCompletionStream
				s, err = billingClient(p, srv, store, &cost).CreateChatCompletionStream(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o", MaxCompletionTokens: 1_000,
					StreamOptions: &goopenai.StreamOptions{IncludeUsage: true},
					Messages:      []goopenai.ChatCompletionMessage{{Role: "user", Content: "hi"}}})
				if err != nil {
					t.Fatal(err)
				}
				for err == nil {
					var c goopenai.ChatCompletionStreamResponse
					if c, err = s.Recv(); err == nil && len(c.Choices) > 0 {
						got += len(c.Choices[0].Delta.Content)
					}
				}
				s.Close()
				if errors.Is(err, io.EOF) {
					t.Fatal("the cut stream ended cleanly")
				}
			} else {
				inner, lerr := lcopenai.New(lcopenai.WithModel("gpt-4o"), lcopenai.WithToken("test-key"), lcopenai.WithBaseURL("http://openai.test/v1"),
					lcopenai.WithHTTPClient(&http.Client{Transport: twlc.NewTransport(srv.Transport())}))
				if lerr != nil {
					t.Fatal(lerr)
				}
				llm := twlc.New(twlc.Models{"gpt-4o": inner}, billingChain(p, store, &cost))
				_, err = llm.GenerateContent(ctx, []llms.MessageContent{human("hi")}, llms.WithMaxTokens(1_000),
					llms.WithStreamingFunc(func(_ context.Context, b []byte) error { got += len(b); return nil }))
				if !errors.Is(err, middleware.ErrStreamCut) {
					t.Fatalf("err %v, want the cut stream's", err)
				}
			}
			if got != len(streamed) {
				t.Fatalf("streamed %d bytes to the caller, want %d", got, len(streamed))
			}
			if c := cost.Load(); c != want {
				t.Errorf("the cut stream was billed %s; its input and the output it streamed cost %s", policies.PicoUSD(c), policies.PicoUSD(want))
			}
			if m := ledgerSpent(t, p, store, "sre"); m != policies.PicoUSD(want).Ceil().Micro() {
				t.Errorf("the team ledger charged %d µ$ for the cut stream, want %d", m, policies.PicoUSD(want).Ceil().Micro())
			}
		})
	}
}
