package llmwrap_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	goopenai "github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// TestBudgetNeverOvershotByAnEstimate: concurrent go-openai calls, with
// small max_tokens, whose answers report no usage — a JSON answer cut
// after its 200, a whole answer or a finished stream without usage (a
// server that omits it), a tool call, a model of another provider whose
// tokens tokenwise only estimates — all within max_tokens, as a provider
// answers. The budget bills each its estimate; no estimate of an answer
// may exceed the output the call reserved (max_tokens per choice: the
// provider cannot bill more), or a budget filled to its limit is
// overshot. After every call and at the end the team's ledger is within
// its limit, in tokens and in USD, and nothing stays reserved.
func TestBudgetNeverOvershotByAnEstimate(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { estimateProperty(t, seed) })
		})
	}
}

// budgetedClient returns go-openai through the chain of p against srv,
// its budgets kept in a memory store, and a Budget of p reading that
// store's ledgers.
func budgetedClient(t *testing.T, p *policies.Policy, srv *openaitest.Server) (*goopenai.Client, *budget.Budget) {
	t.Helper()
	store := budget.NewMemoryStore()
	chain, err := llmwrap.Build(p, llmwrap.WithBudgetStore(store), llmwrap.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	cfg := goopenai.DefaultConfig("test")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = twopenai.NewHTTPClient(chain, twopenai.WithBaseTransport(srv.Transport()))
	ledger, err := llmwrap.NewBudget(p, budget.WithStore(store))
	if err != nil {
		t.Fatal(err)
	}
	return goopenai.NewClientWithConfig(cfg), ledger
}

// words returns n words that are one token each in every encoding.
func words(n int) string { return strings.TrimSpace(strings.Repeat(" ok", n)) }

// rawAnswer is a whole chat completion without usage.
func rawAnswer(model, content string, calls []openaitest.ToolCall) []byte {
	msg := map[string]any{"role": "assistant", "content": content}
	finish := "stop"
	if len(calls) > 0 {
		msg["content"] = nil
		msg["tool_calls"] = calls
		finish = "tool_calls"
	}
	b, _ := json.Marshal(map[string]any{"id": "chatcmpl-raw", "object": "chat.completion", "created": 1, "model": model,
		"choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": finish}}})
	return b
}

// rawStream is a finished stream without usage (a server that ignores
// stream_options).
func rawStream(model, content string) [][]byte {
	chunk := func(delta map[string]any, finish any) []byte {
		b, _ := json.Marshal(map[string]any{"id": "chatcmpl-raw", "object": "chat.completion.chunk", "created": 1, "model": model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}})
		return []byte("data: " + string(b) + "\n\n")
	}
	out := [][]byte{chunk(map[string]any{"role": "assistant", "content": ""}, nil)}
	for _, w := range strings.SplitAfter(content, " ") {
		out = append(out, chunk(map[string]any{"content": w}, nil))
	}
	return append(out, chunk(map[string]any{}, "stop"), []byte("data: [DONE]\n\n"))
}

func estimateProperty(t *testing.T, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 7))
	srv := openaitest.New()
	models := []string{"gpt-4o-mini", "claude-sonnet-4"}
	kinds := []string{"cutjson", "whole", "stream", "tool"}
	for _, m := range models {
		for _, k := range kinds {
			for mt := 16; mt <= 64; mt += 16 {
				marker := fmt.Sprintf("#%s-%s-%d", k, m, mt)
				var rep openaitest.Reply
				switch k {
				case "cutjson": // the provider's 200, then the body cut: it billed a whole answer
					rep = openaitest.Reply{Content: words(mt), Fault: openaitest.Fault{Kind: openaitest.FaultCut}}
				case "whole":
					rep = openaitest.Reply{Content: words(mt), Raw: [][]byte{rawAnswer(m, words(mt), nil)}}
				case "stream":
					rep = openaitest.Reply{Content: words(mt), Raw: rawStream(m, words(mt))}
				case "tool":
					// Arguments of fewer tokens than max_tokens, the call's framing included.
					args := `{"q":"` + words(mt-8) + `"}`
					rep = openaitest.Reply{Raw: [][]byte{rawAnswer(m, "", []openaitest.ToolCall{openaitest.Call("call_1", "search", args)})}}
				}
				srv.On(openaitest.Model(m), openaitest.LastContains(marker)).Reply(rep)
			}
		}
	}
	unit := "max_tokens: 3000"
	if seed%2 == 1 {
		unit = "max_usd: 0.002"
	}
	p, err := policies.LoadBytes([]byte(`version: 1
name: prop
budget:
  team: {period: daily, `+unit+`}
  min_output_tokens: 8
`), "prop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	client, ledger := budgetedClient(t, p, srv)
	ctx := middleware.WithTeam(context.Background(), "devops")
	_, lim := ledger.Limits()
	over := func(rem budget.Remaining) bool {
		return lim.Tokens > 0 && rem.Used.Tokens > lim.Tokens || lim.USDMicros > 0 && rem.Used.USDMicros > lim.USDMicros
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	refused := 0
	for g := range 16 {
		rg := rand.New(rand.NewPCG(seed, uint64(g)+r.Uint64()))
		wg.Go(func() {
			for i := range 12 {
				m, k, mt := models[rg.IntN(len(models))], kinds[rg.IntN(len(kinds))], 16*(1+rg.IntN(4))
				req := goopenai.ChatCompletionRequest{Model: m, MaxCompletionTokens: mt,
					Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: fmt.Sprintf("call %d/%d #%s-%s-%d", g, i, k, m, mt)}}}
				var err error
				if k == "stream" {
					var st *goopenai.ChatCompletionStream
					if st, err = client.CreateChatCompletionStream(ctx, req); err == nil {
						for err == nil {
							_, err = st.Recv()
						}
						if errors.Is(err, io.EOF) {
							err = nil
						}
						st.Close()
					}
				} else {
					_, err = client.CreateChatCompletion(ctx, req)
				}
				if errors.Is(err, budget.ErrExceeded) {
					mu.Lock()
					refused++
					mu.Unlock()
				}
				rem, rerr := ledger.Remaining(ctx, "devops")
				if rerr != nil {
					t.Error(rerr)
				} else if over(rem) {
					t.Errorf("after a %s answer of %s (max_tokens %d): the ledger spent %+v, past its limit %+v", k, m, mt, rem.Used, lim)
				}
			}
		})
	}
	wg.Wait()
	rem, err := ledger.Remaining(ctx, "devops")
	if err != nil {
		t.Fatal(err)
	}
	if over(rem) || !rem.Reserved.IsZero() || rem.InFlight != 0 {
		t.Errorf("ledger used %+v (limit %+v), reserved %+v, in flight %d", rem.Used, lim, rem.Reserved, rem.InFlight)
	}
	if refused == 0 {
		t.Errorf("no call refused: the budget did not bind")
	}
	t.Logf("%d refused, ledger %+v of %+v", refused, rem.Used, lim)
}
