package e2e

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"
	"github.com/tmc/langchaingo/llms"
	lcopenai "github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// TestStandaloneBudgetBillsAMalformedAnswer: a whole 200 answer that is no
// valid answer (an HTML page, half a JSON answer, JSON without choices or
// with a member of the wrong type), and a plain answer cut after its 200,
// is billed its estimated input by a
// budget however it is composed — the budget of a built chain
// (llmwrap.Build), a budget's Middleware used on its own around the
// adapter (no Meter below it), and both, the standalone budget around the
// built chain — streamed or not, through go-openai and langchaingo
// (twlc.NewTransport): each ledger charges the same figure, once for the
// one request sent, and never past its limit. (Before, the standalone
// budget charged such an answer 0 while a cut stream of the same prompt
// was charged its estimate.)
func TestStandaloneBudgetBillsAMalformedAnswer(t *testing.T) {
	prompt := strings.Repeat("Check the disks. ", 200)
	// Each shape as a plain answer's body and as a stream's one event.
	shapes := []struct{ name, body, event string }{
		{"html", `<html><body>502 Bad Gateway</body></html>`, `<html><body>502 Bad Gateway</body></html>`},
		{"half JSON", `{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assis`,
			`{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assis`},
		// A stream of an event without choices is a stream of nothing,
		// which only go-openai is promised to raise (README).
		{"no choices", `{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[]}`,
			`{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[]}`},
		{"choices of the wrong type", `{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o","choices":"none"}`,
			`{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":"none"}`},
		{"content of the wrong type", `{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":42},"finish_reason":"stop"}]}`,
			`{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":42},"finish_reason":"stop"}]}`},
	}
	// An answer cut after its 2xx status (half its JSON, then the
	// connection lost), which the provider billed whole: plain only.
	shapes = append(shapes, struct{ name, body, event string }{"cut body", "", ""})
	type ledger struct {
		p     *policies.Policy
		store budget.Store
	}
	// compose returns the chain of a composition and the ledgers it charges.
	compose := func(t *testing.T, name string) (middleware.Middleware, []ledger) {
		built := ledger{dailyTeamPolicy(), budget.NewMemoryStore()}
		alone := ledger{dailyTeamPolicy(), budget.NewMemoryStore()}
		standalone := func() middleware.Middleware {
			b, err := llmwrap.NewBudget(alone.p, budget.WithStore(alone.store))
			if err != nil {
				t.Fatal(err)
			}
			return b.Middleware()
		}
		switch name {
		case "built":
			return llmwrap.MustBuild(built.p, llmwrap.WithBudgetStore(built.store), llmwrap.WithLogger(slog.New(slog.DiscardHandler))), []ledger{built}
		case "standalone":
			return standalone(), []ledger{alone}
		default: // both
			return middleware.Chain(standalone(), llmwrap.MustBuild(built.p, llmwrap.WithBudgetStore(built.store), llmwrap.WithLogger(slog.New(slog.DiscardHandler)))),
				[]ledger{built, alone}
		}
	}
	// want is what the built chain's ledger charges the answer (the
	// existing TestMalformedAnswerIsBilled checks it against the report);
	// every composition must charge each of its ledgers exactly that.
	want := map[string]int64{}
	for _, shape := range shapes {
		for _, client := range []string{"go-openai", "langchaingo"} {
			for _, stream := range []bool{false, true} {
				for _, comp := range []string{"built", "standalone", "both"} {
					name := shape.name + "/" + client + "/" + map[bool]string{false: "plain", true: "stream"}[stream] + "/" + comp
					if stream && (shape.name == "cut body" || client == "langchaingo" && shape.name == "no choices") {
						// A cut stream is a partial answer, which every
						// composition bills (TestCutJSONAnswerIsBilled); a
						// stream of nothing through langchaingo is not
						// raised (README promises it of go-openai).
						continue
					}
					t.Run(name, func(t *testing.T) {
						srv := openaitest.New()
						body := shape.body
						if stream {
							// The shape as a stream's one event.
							body = "data: " + shape.event + "\n\ndata: [DONE]\n\n"
						}
						reply := openaitest.Reply{Raw: [][]byte{[]byte(body)}}
						if shape.name == "cut body" {
							reply = openaitest.Reply{Content: strings.Repeat("ok ", 300), Fault: openaitest.Fault{Kind: openaitest.FaultCut}}
						}
						srv.On().Reply(reply)
						chain, ledgers := compose(t, comp)
						ctx := middleware.WithTeam(context.Background(), "sre")
						var err error
						switch client {
						case "go-openai":
							cfg := goopenai.DefaultConfig("test-key")
							cfg.BaseURL = "http://openai.test/v1"
							cfg.HTTPClient = twopenai.NewHTTPClient(chain, twopenai.WithBaseTransport(srv.Transport()))
							c := goopenai.NewClientWithConfig(cfg)
							req := goopenai.ChatCompletionRequest{Model: "gpt-4o", MaxCompletionTokens: 2000,
								Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: prompt}}}
							if stream {
								req.Stream = true
								var s *goopenai.ChatCompletionStream
								if s, err = c.CreateChatCompletionStream(ctx, req); err == nil {
									for err == nil {
										_, err = s.Recv()
									}
									s.Close()
								}
							} else {
								_, err = c.CreateChatCompletion(ctx, req)
							}
						case "langchaingo":
							inner, ierr := lcopenai.New(lcopenai.WithModel("gpt-4o"), lcopenai.WithToken("test-key"), lcopenai.WithBaseURL("http://openai.test/v1"),
								lcopenai.WithHTTPClient(&http.Client{Transport: twlc.NewTransport(srv.Transport())}))
							if ierr != nil {
								t.Fatal(ierr)
							}
							opts := []llms.CallOption{llms.WithMaxTokens(2000)}
							if stream {
								opts = append(opts, llms.WithStreamingFunc(func(context.Context, []byte) error { return nil }))
							}
							_, err = twlc.New(twlc.Models{"gpt-4o": inner}, chain).GenerateContent(ctx, []llms.MessageContent{human(prompt)}, opts...)
						}
						if err == nil || !errors.Is(err, middleware.ErrMalformed) && !errors.Is(err, middleware.ErrStreamCut) && !errors.Is(err, middleware.ErrNetwork) {
							t.Fatalf("err %v, want a malformed answer's error", err)
						}
						if n := len(srv.Requests()); n != 1 {
							t.Fatalf("%d requests sent, want 1", n)
						}
						key := shape.name + "/" + client + "/" + map[bool]string{false: "plain", true: "stream"}[stream]
						for i, l := range ledgers {
							got := ledgerSpent(t, l.p, l.store, "sre")
							if got <= 0 || got > l.p.Budget.Team.MaxUSD.Micro() {
								t.Errorf("ledger %d charged %d µ$, want the estimated input's cost, within the limit", i, got)
							}
							if w, ok := want[key]; !ok {
								want[key] = got
							} else if got != w {
								t.Errorf("ledger %d charged %d µ$, the built chain's charges %d µ$", i, got, w)
							}
						}
					})
				}
			}
		}
	}
}
