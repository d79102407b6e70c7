package langchaingo_test

import (
	"fmt"
	"log/slog"
	"testing"

	"github.com/tmc/langchaingo/llms"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
)

// TestUsageWrittenAsStringsIsBilled: a server that writes its usage's
// counts as strings ("prompt_tokens":"7000", as vLLM behind some proxies
// does) billed 7,003 tokens: through langchaingo's openai backend with
// twlc.NewTransport the call answers, the run is charged at least them,
// and the answer's GenerationInfo reports them, plain and streamed. (The
// backend cannot decode a string into its int counts: the call failed as
// malformed and the run was charged 0 tokens for a plain answer, 9 — the
// estimate — for a stream.)
func TestUsageWrittenAsStringsIsBilled(t *testing.T) {
	const usage = `"usage":{"prompt_tokens":"7000","completion_tokens":" 3 ","total_tokens":"7003","prompt_tokens_details":{"cached_tokens":"1000"}}`
	plain := openaitest.Reply{Raw: [][]byte{[]byte(`{"id":"x","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],` + usage + `}`)}}
	stream := rawStream(wireHi, `data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],`+usage+`}`, wireDone)
	for _, be := range backends {
		if be.name == "openai Transport" {
			continue // without twlc.NewTransport: the backend alone reads the answer
		}
		for _, streamed := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/stream=%t", be.name, streamed), func(t *testing.T) {
				srv := openaitest.NewServer(t)
				opts := []llms.CallOption{}
				if streamed {
					srv.On().Reply(stream)
					opts = append(opts, streaming())
				} else {
					srv.On().Reply(plain)
				}
				b, err := budget.New(budget.Config{Run: budget.Amount{Tokens: 1_000_000}}, budget.WithLogger(slog.New(slog.DiscardHandler)))
				if err != nil {
					t.Fatal(err)
				}
				sp := &spy{}
				llm := twlc.New(twlc.Models{"gpt-4o": be.llm(t, srv)}, middleware.Chain(b.Middleware(), sp.mw))
				ctx, run := middleware.StartRun(t.Context(), "strings")
				resp, err := llm.GenerateContent(ctx, []llms.MessageContent{human("q")}, opts...)
				if err != nil {
					t.Fatalf("err %v, want the answer", err)
				}
				if got := resp.Choices[0].Content; got != "hi" {
					t.Errorf("content %q, want %q", got, "hi")
				}
				if used := b.RunBalance(run).Used.Tokens; used < 7003 {
					t.Errorf("the upstream billed 7,003 tokens: the run was charged %d", used)
				}
				_, r := sp.last(t)
				if r == nil || r.Usage.InputTokens != 7000 || r.Usage.OutputTokens != 3 || r.Usage.CachedInputTokens != 1000 {
					t.Errorf("usage %+v, want 7000 in (1000 cached), 3 out", r)
				}
				if u, ok := twlc.UsageFromGenerationInfo(resp.Choices[0].GenerationInfo); !ok || u.InputTokens != 7000 || u.OutputTokens != 3 {
					t.Errorf("GenerationInfo usage %+v (%t), want 7000 in, 3 out", u, ok)
				}
			})
		}
	}
}
