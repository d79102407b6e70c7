package e2e

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	oaiadapter "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// hammerPolicy is a $1.00 daily team budget on gpt-4o with max_tokens 200.
func hammerPolicy() *policies.Policy {
	return &policies.Policy{Version: 1, Name: "hammer", Budget: policies.Budget{
		Request: policies.RequestBudget{MaxOutputTokens: 200},
		Team:    policies.TeamBudget{Period: policies.PeriodDaily, MaxUSD: policies.Dollar},
	}}
}

// scriptReplies queues n replies with random latencies (0–4 ms) and 10%
// server errors; answers are 100–700 bytes (25–175 completion tokens).
func scriptReplies(srv *openaitest.Server, n int, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 1))
	replies := make([]openaitest.Reply, n)
	for i := range replies {
		if r.IntN(10) == 0 {
			replies[i] = openaitest.ServerError()
		} else {
			replies[i] = openaitest.Text(fmt.Sprintf("%0*d", 100+r.IntN(600), i))
		}
		replies[i].Latency = time.Duration(r.IntN(4000)) * time.Microsecond
	}
	srv.On().Reply(replies...)
}

// 1,000 goroutines hammer a $1.00 team budget through the full chain:
// llmwrap.Build, the go-openai client over HTTP with the tokenwise
// transport, against openaitest with random latencies and 10% failures.
// The settled spend never exceeds $1.00, no reservation is left behind,
// and the ledger (micro-dollars) equals the exact sum of the calls' costs,
// rounded up once to a micro-dollar.
func TestHammerTeamBudgetFullChain(t *testing.T) {
	srv := openaitest.NewServer(t)
	scriptReplies(srv, 1000, 42)
	store := budget.NewMemoryStore()
	p := hammerPolicy()
	var billed atomic.Int64
	var finished atomic.Int64
	obs := middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
		if f, ok := e.(middleware.CallFinished); ok {
			billed.Add(f.Facts.CostPico)
			finished.Add(1)
		}
	})
	chain := llmwrap.MustBuild(p, llmwrap.WithBudgetStore(store), llmwrap.WithObserver(obs),
		llmwrap.WithLogger(slog.New(slog.DiscardHandler)))
	base := &http.Transport{MaxIdleConnsPerHost: 64}
	defer base.CloseIdleConnections()
	cfg := goopenai.DefaultConfig("test-key")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = oaiadapter.NewHTTPClient(chain, oaiadapter.WithBaseTransport(base))
	client := goopenai.NewClientWithConfig(cfg)

	ctx := middleware.WithTeam(context.Background(), "sre")
	var ok, rejected, failed atomic.Int64
	var wg sync.WaitGroup
	for i := range 1000 {
		wg.Go(func() {
			_, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{
				Model:    "gpt-4o",
				Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: fmt.Sprintf("Check the disk of server %d, please.", i)}},
			})
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, budget.ErrExceeded):
				rejected.Add(1)
			default:
				failed.Add(1)
			}
		})
	}
	wg.Wait()

	b, err := llmwrap.NewBudget(p, budget.WithStore(store))
	if err != nil {
		t.Fatal(err)
	}
	rem, err := b.Remaining(context.Background(), "sre")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ok %d, rejected %d, failed %d; spent %s of %s", ok.Load(), rejected.Load(), failed.Load(),
		middleware.FormatUSD(rem.Used.USDMicros), middleware.FormatUSD(rem.Limit.USDMicros))
	if rem.Used.USDMicros > policies.Dollar.Micro() {
		t.Fatalf("settled spend %s exceeds $1.00", middleware.FormatUSD(rem.Used.USDMicros))
	}
	if rem.InFlight != 0 || !rem.Reserved.IsZero() {
		t.Fatalf("reservations left behind: %+v", rem.Balance)
	}
	if got := policies.PicoUSD(billed.Load()).Ceil().Micro(); got != rem.Used.USDMicros {
		t.Fatalf("calls billed %d micro-USD (%s), ledger has %d", got, policies.PicoUSD(billed.Load()), rem.Used.USDMicros)
	}
	if ok.Load() == 0 || rejected.Load() == 0 || failed.Load() == 0 {
		t.Fatalf("the test must see successes, rejections and failures: ok %d, rejected %d, failed %d", ok.Load(), rejected.Load(), failed.Load())
	}
	if finished.Load() != 1000 {
		t.Fatalf("%d calls finished, want 1000", finished.Load())
	}
}
