package e2e

import (
	"context"
	"errors"
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
)

// TestMalformedAnswerIsBilled: a whole 200 answer that is no valid answer
// — not JSON (half of one included), JSON without choices, a member of
// the wrong type — is a
// typed error (middleware.ErrMalformed), never a success; the provider
// produced it and bills it, so the call is billed its estimated input,
// marked Estimated, and the team ledger charges what the report bills —
// through go-openai and through langchaingo. (Before, both said $0.)
func TestMalformedAnswerIsBilled(t *testing.T) {
	prompt := strings.Repeat("Check the disks. ", 200)
	for _, c := range []struct {
		name, body string
		fault      openaitest.FaultKind
	}{
		{"not JSON", `<html><body>502 Bad Gateway</body></html>`, 0},
		{"half a JSON answer, ended cleanly", "", openaitest.FaultEOF},
		{"no choices", `{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[]}`, 0},
		{"choices of the wrong type", `{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o","choices":"none"}`, 0},
		{"content of the wrong type", `{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":42},"finish_reason":"stop"}]}`, 0},
	} {
		reply := openaitest.Reply{Content: strings.Repeat("ok ", 100), Fault: openaitest.Fault{Kind: c.fault}}
		if c.body != "" {
			reply.Body = []byte(c.body)
		}
		check := func(t *testing.T, p *policies.Policy, store budget.Store, cost *atomic.Int64, attempts []middleware.Attempt, err error) {
			t.Helper()
			var pe *middleware.ProviderError
			if !errors.Is(err, middleware.ErrMalformed) || !errors.As(err, &pe) {
				t.Fatalf("err %v, want a malformed answer's typed error", err)
			}
			if len(attempts) != 1 || !attempts[0].Estimated || attempts[0].Usage.InputTokens < 600 {
				t.Errorf("attempts %+v: want one billed its estimated input (≥ 600 tokens), flagged", attempts)
			}
			if c := cost.Load(); c < 600*2_500_000 {
				t.Errorf("the malformed answer was billed %s", policies.PicoUSD(c))
			}
			if m, want := ledgerSpent(t, p, store, "sre"), policies.PicoUSD(cost.Load()).Ceil().Micro(); m != want {
				t.Errorf("the ledger charged %d µ$, the report bills %s", m, policies.PicoUSD(cost.Load()))
			}
		}
		observer := func(attempts *[]middleware.Attempt) context.Context {
			return middleware.WithObserver(middleware.WithTeam(context.Background(), "sre"), middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
				if f, ok := e.(middleware.CallFinished); ok {
					*attempts = f.Facts.Attempts
				}
			}))
		}
		t.Run(c.name+"/go-openai", func(t *testing.T) {
			srv := openaitest.New()
			srv.On().Reply(reply)
			p := dailyTeamPolicy()
			store := budget.NewMemoryStore()
			var cost atomic.Int64
			var attempts []middleware.Attempt
			client := billingClient(p, srv, store, &cost)
			resp, err := client.CreateChatCompletion(observer(&attempts), goopenai.ChatCompletionRequest{Model: "gpt-4o", MaxCompletionTokens: 2000,
				Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: prompt}}})
			if err == nil {
				t.Fatalf("a success: %+v", resp)
			}
			check(t, p, store, &cost, attempts, err)
		})
		t.Run(c.name+"/langchaingo", func(t *testing.T) {
			srv := openaitest.New()
			srv.On().Reply(reply)
			p := dailyTeamPolicy()
			store := budget.NewMemoryStore()
			var cost atomic.Int64
			var attempts []middleware.Attempt
			inner, err := lcopenai.New(lcopenai.WithModel("gpt-4o"), lcopenai.WithToken("test-key"), lcopenai.WithBaseURL("http://openai.test/v1"),
				lcopenai.WithHTTPClient(&http.Client{Transport: twlc.NewTransport(srv.Transport())}))
			if err != nil {
				t.Fatal(err)
			}
			llm := twlc.New(twlc.Models{"gpt-4o": inner}, billingChain(p, store, &cost))
			resp, err := llm.GenerateContent(observer(&attempts), []llms.MessageContent{human(prompt)}, llms.WithMaxTokens(2000))
			if err == nil {
				t.Fatalf("a success: %+v", resp)
			}
			check(t, p, store, &cost, attempts, err)
		})
	}
}
