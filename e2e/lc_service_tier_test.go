package e2e

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tmc/langchaingo/llms"
	lcopenai "github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// TestLangchaingoAnswersServiceTierIsBilled: langchaingo's openai backend
// does not decode an answer's service_tier, yet the provider bills the
// tokens at the tier it names (a project whose default is priority
// processing, flex, ...). Through NewTransport the call is billed at that
// tier, as through the go-openai adapter: a plain answer and a stream,
// whose tier comes in every chunk.
func TestLangchaingoAnswersServiceTierIsBilled(t *testing.T) {
	const usage = `"usage":{"prompt_tokens":1000,"completion_tokens":100,"total_tokens":1100}`
	answers := map[string]string{
		"plain": `{"id":"c1","object":"chat.completion","created":1,"model":"gpt-5.2","service_tier":"priority","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],` + usage + `}`,
		"stream": `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-5.2","service_tier":"priority","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":null}]}` + "\n\n" +
			`data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-5.2","service_tier":"priority","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n" +
			`data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-5.2","service_tier":"priority","choices":[],` + usage + `}` + "\n\n" +
			"data: [DONE]\n\n",
	}
	p := policies.Default()
	pricer := llmwrap.Pricer(p)
	priority, _ := pricer.Cost("gpt-5.2", middleware.Usage{InputTokens: 1000, OutputTokens: 100, ServiceTier: "priority"})
	standard, _ := pricer.Cost("gpt-5.2", middleware.Usage{InputTokens: 1000, OutputTokens: 100})
	if priority == standard {
		t.Fatalf("the catalog prices gpt-5.2's priority tier as its standard one (%d)", priority)
	}
	for name, body := range answers {
		t.Run(name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasPrefix(body, "data:") {
					w.Header().Set("Content-Type", "text/event-stream")
				} else {
					w.Header().Set("Content-Type", "application/json")
				}
				_, _ = w.Write([]byte(body))
			}))
			defer ts.Close()
			base := &http.Transport{}
			defer base.CloseIdleConnections()
			obs := new(recorder)
			chain := llmwrap.MustBuild(p, llmwrap.WithObserver(obs), llmwrap.WithLogger(slog.New(slog.DiscardHandler)))
			inner, err := lcopenai.New(lcopenai.WithBaseURL(ts.URL), lcopenai.WithToken("k"), lcopenai.WithModel("gpt-5.2"),
				lcopenai.WithHTTPClient(&http.Client{Transport: twlc.NewTransport(base)}))
			if err != nil {
				t.Fatal(err)
			}
			opts := []llms.CallOption{llms.WithModel("gpt-5.2")}
			if name == "stream" {
				opts = append(opts, llms.WithStreamingFunc(func(context.Context, []byte) error { return nil }))
			}
			llm := twlc.New(twlc.Models{"gpt-5.2": inner}, chain)
			if _, err := llm.GenerateContent(context.Background(), []llms.MessageContent{llms.TextParts(llms.ChatMessageTypeHuman, "hello")}, opts...); err != nil {
				t.Fatal(err)
			}
			facts := obs.callFacts()
			if len(facts) != 1 {
				t.Fatalf("%d calls recorded, want 1", len(facts))
			}
			if got := facts[0].CostPico; got != priority {
				t.Fatalf("billed %s, want gpt-5.2's priority rates %s (standard: %s)",
					middleware.FormatPico(got), middleware.FormatPico(priority), middleware.FormatPico(standard))
			}
		})
	}
}
