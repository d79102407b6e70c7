package langchaingo_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/tmc/langchaingo/llms"
	"github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// TestStreamEndedByItsCallbackIsBilled: concurrent langchaingo streams
// whose streaming func ends them after a few chunks, by returning an
// error or by panicking. The provider had each request and streamed part
// of its answer, and bills it: the team ledger charges each stream its
// input at least (a prompt of over 200 tokens) — a panic as an error,
// never $0 — and nothing stays reserved.
func TestStreamEndedByItsCallbackIsBilled(t *testing.T) {
	for _, mode := range []string{"error", "panic"} {
		t.Run(mode, func(t *testing.T) {
			srv := openaitest.New()
			srv.On().Reply(openaitest.Reply{Content: strings.Repeat("The disks are fine. ", 20), ChunkSize: 10})
			p, err := policies.LoadBytes([]byte("version: 1\nname: cb\nbudget:\n  team: {period: daily, max_usd: 1}\n"), "cb.yaml")
			if err != nil {
				t.Fatal(err)
			}
			store := budget.NewMemoryStore()
			chain, err := llmwrap.Build(p, llmwrap.WithBudgetStore(store), llmwrap.WithLogger(slog.New(slog.DiscardHandler)))
			if err != nil {
				t.Fatal(err)
			}
			inner, err := openai.New(openai.WithBaseURL(srv.URL), openai.WithToken("test"), openai.WithModel("gpt-4o"),
				openai.WithHTTPClient(&http.Client{Transport: twlc.NewTransport(srv.Transport())}))
			if err != nil {
				t.Fatal(err)
			}
			llm := twlc.New(twlc.Models{"gpt-4o": inner}, chain)
			ctx := middleware.WithTeam(context.Background(), "devops")
			const calls = 8
			var wg sync.WaitGroup
			for g := range calls {
				wg.Go(func() {
					n := 0
					_, err := llm.GenerateContent(ctx, []llms.MessageContent{human(fmt.Sprint(g) + strings.Repeat(" Check the disks please.", 50))},
						llms.WithMaxTokens(500), llms.WithStreamingFunc(func(context.Context, []byte) error {
							if n++; n == 2+g%4 {
								if mode == "panic" {
									panic("the agent's callback failed")
								}
								return errors.New("the agent stopped")
							}
							return nil
						}))
					if err == nil {
						t.Error("the stream its callback ended succeeded")
					}
				})
			}
			wg.Wait()
			ledger, err := llmwrap.NewBudget(p, budget.WithStore(store))
			if err != nil {
				t.Fatal(err)
			}
			rem, err := ledger.Remaining(ctx, "devops")
			if err != nil {
				t.Fatal(err)
			}
			if srv.Count() != calls || rem.Used.Tokens < calls*200 || !rem.Reserved.IsZero() || rem.InFlight != 0 {
				t.Errorf("%d streams sent, the ledger charged %+v (want their input at least, %d tokens), reserved %+v, %d in flight",
					srv.Count(), rem.Used, calls*200, rem.Reserved, rem.InFlight)
			}
		})
	}
}
