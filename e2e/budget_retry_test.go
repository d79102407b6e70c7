package e2e

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// TestRetriedAttemptsAreSettledAsBilled: the team ledger charges what the
// call's report bills, attempts a retry discarded included. A stream cut
// before its first chunk, then retried, is billed its estimated input by
// the Meter: the ledger charges it too (before, only the final answer's
// usage, and the ledger said less was spent than the call cost). A 500,
// which the provider does not bill, adds nothing to either.
func TestRetriedAttemptsAreSettledAsBilled(t *testing.T) {
	t.Parallel()
	const whole = `data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}

data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}

data: [DONE]

`
	for _, c := range []struct {
		name      string
		first     func(w http.ResponseWriter)
		moreThan0 bool // the discarded attempt is billed
	}{
		{"a stream cut before its first chunk", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, ": connected\n\n") // then the connection ends
		}, true},
		{"a server error", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `{"error":{"message":"boom","type":"server_error","param":null,"code":null}}`)
		}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var n atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				if n.Add(1) == 1 {
					c.first(w)
					return
				}
				w.Header().Set("Content-Type", "text/event-stream")
				_, _ = io.WriteString(w, whole)
			}))
			t.Cleanup(srv.Close)
			var facts middleware.CallFacts
			obs := middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
				if f, ok := e.(middleware.CallFinished); ok {
					facts = f.Facts
				}
			})
			p := mustPolicy(t, "version: 1\nname: ledger\nbudget: {team: {period: daily, max_usd: 100}}\nfallback: {retry: {max_attempts: 2, base_delay: 1ms}}\n")
			store := budget.NewMemoryStore()
			base := &http.Transport{}
			t.Cleanup(base.CloseIdleConnections)
			cfg := goopenai.DefaultConfig("k")
			cfg.BaseURL = srv.URL
			cfg.HTTPClient = twopenai.NewHTTPClient(llmwrap.MustBuild(p, llmwrap.WithBudgetStore(store), llmwrap.WithObserver(obs)),
				twopenai.WithBaseTransport(base))
			ctx := middleware.WithTeam(context.Background(), "sre")
			text, err := streamText(ctx, goopenai.NewClientWithConfig(cfg), goopenai.ChatCompletionRequest{Model: "gpt-4o",
				Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "hello"}}})
			if err != nil {
				t.Fatal(err)
			}
			if text != "hi" || n.Load() != 2 || len(facts.Attempts) != 2 {
				t.Fatalf("text %q after %d requests, %d attempts reported", text, n.Load(), len(facts.Attempts))
			}
			discarded := facts.Attempts[0]
			if (discarded.CostPico > 0) != c.moreThan0 {
				t.Fatalf("the discarded attempt was billed %d pico-USD (%+v)", discarded.CostPico, discarded.Usage)
			}
			b, _ := llmwrap.NewBudget(p, budget.WithStore(store))
			rem, _ := b.Remaining(ctx, "sre")
			wantUSD := policies.PicoUSD(facts.CostPico).Ceil().Micro()
			wantTokens := discarded.Usage.Total() + 17
			if rem.Used.USDMicros != wantUSD || rem.Used.Tokens != wantTokens || !rem.Reserved.IsZero() {
				t.Fatalf("team ledger %+v; want %d µ$ and %d tokens, what the call's report bills", rem.Used, wantUSD, wantTokens)
			}
		})
	}
}
