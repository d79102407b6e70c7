package redis_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"

	goredis "github.com/redis/go-redis/v9"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/adapters/redis"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
	"github.com/tokenwise/tokenwise/policies"
)

// TestRedisBudgetUnderRandomConcurrency is llmwrap's
// TestBudgetUnderRandomConcurrency with the team's ledger in Redis (in
// real time: the callers' deadlines are short). 64 goroutines of go-openai calls,
// streams and not, through a chain with a team budget, fallback and
// retries, against a provider that answers, fails with a 500 or a 429,
// cuts or ends a stream early, sends malformed answers or stalls until
// the caller gives up — and callers that cancel mid-stream. At the end
// the team's ledger holds exactly what the calls' reports billed (their
// attempts' cost summed exactly, rounded up once; their tokens), nothing
// is left reserved, and the ledger never passed its limit. The limit is
// low enough to bind when a loaded machine lets most calls reach their
// deadline before they spend (at $0.2 a loaded run spent $0.074: no call
// was refused).
func TestRedisBudgetUnderRandomConcurrency(t *testing.T) {
	c := testRedis(t)
	for seed := range uint64(2) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			redisBudgetProperty(t, seed, c, testPrefix(t, c))
		})
	}
}

func redisBudgetProperty(t *testing.T, seed uint64, c *goredis.Client, prefix string) {
	srv := openaitest.New()
	defer srv.Close()
	long := strings.Repeat("The disks are fine. ", 30)
	ok := openaitest.Reply{Content: long, ChunkSize: 40, ChunkLatency: time.Millisecond}
	for _, m := range []string{"gpt-4o", "gpt-4o-mini"} {
		is := openaitest.Model(m)
		srv.On(is, openaitest.LastContains("#ok")).Reply(ok)
		srv.On(is, openaitest.LastContains("#stall")).Reply(openaitest.Stall())
		srv.On(is, openaitest.LastContains("#late")).Reply(openaitest.StallAfter(3))
	}
	srv.On(openaitest.Model("gpt-4o-mini")).Reply(ok)
	primary := openaitest.Model("gpt-4o")
	srv.On(primary, openaitest.LastContains("#500")).Reply(openaitest.ServerError())
	srv.On(primary, openaitest.LastContains("#429")).Reply(openaitest.RateLimited(0))
	srv.On(primary, openaitest.LastContains("#cut")).Reply(openaitest.CutAfter(3))
	srv.On(primary, openaitest.LastContains("#eof")).Reply(openaitest.EOFAfter(2))
	srv.On(primary, openaitest.LastContains("#malformed")).Reply(openaitest.Malformed())
	kinds := []string{"#ok", "#ok", "#500", "#429", "#cut", "#eof", "#malformed", "#stall", "#late", "#cancel"}

	p, err := policies.LoadBytes([]byte(fmt.Sprintf(`version: 1
name: prop
budget:
  team: {period: monthly, max_usd: 0.05}
  store: {kind: redis, key_prefix: %q}
fallback:
  models: [gpt-4o, gpt-4o-mini]
  retry: {max_attempts: 2, base_delay: 1ms, max_delay: 2ms}
`, prefix)), "prop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	store := redis.NewBudgetStore(c)
	rec := &middlewaretest.Recorder{}
	chain, err := llmwrap.Build(p, llmwrap.WithBudgetStore(store), llmwrap.WithObserver(rec))
	if err != nil {
		t.Fatal(err)
	}
	cfg := goopenai.DefaultConfig("test")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = twopenai.NewHTTPClient(chain, twopenai.WithBaseTransport(srv.Transport()))
	client := goopenai.NewClientWithConfig(cfg)
	ledger, err := llmwrap.NewBudget(p, budget.WithStore(store))
	if err != nil {
		t.Fatal(err)
	}
	ctx := middleware.WithTeam(context.Background(), "devops")
	limit := ledger.Limits
	_, teamLim := limit()

	var mu sync.Mutex
	var refused, calls int
	var wg sync.WaitGroup
	for g := range 64 {
		r := rand.New(rand.NewPCG(seed, uint64(g)))
		wg.Go(func() {
			for i := range 8 {
				kind := kinds[r.IntN(len(kinds))]
				cctx, cancel := context.WithTimeout(ctx, time.Duration(100+r.IntN(200))*time.Millisecond)
				req := goopenai.ChatCompletionRequest{Model: "gpt-4o", MaxCompletionTokens: 200 + r.IntN(400),
					Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: fmt.Sprintf("%s call %d/%d", kind, g, i)}}}
				if kind == "#cancel" {
					req.Messages[0].Content = fmt.Sprintf("#ok call %d/%d", g, i)
				}
				var err error
				if r.IntN(2) == 0 {
					_, err = client.CreateChatCompletion(cctx, req)
				} else {
					var st *goopenai.ChatCompletionStream
					if st, err = client.CreateChatCompletionStream(cctx, req); err == nil {
						for n := 0; ; n++ {
							if kind == "#cancel" && n == 2 {
								cancel()
							}
							if _, err = st.Recv(); err != nil {
								break
							}
						}
						if errors.Is(err, io.EOF) {
							err = nil
						}
						st.Close()
					}
				}
				cancel()
				mu.Lock()
				calls++
				if errors.Is(err, budget.ErrExceeded) {
					refused++
				}
				mu.Unlock()
				if rem, err := ledger.Remaining(ctx, "devops"); err != nil {
					t.Error(err)
				} else if rem.Used.USDMicros > teamLim.USDMicros {
					t.Errorf("the ledger spent %d micro-USD, past its limit of %d", rem.Used.USDMicros, teamLim.USDMicros)
				}
			}
		})
	}
	wg.Wait()
	srv.Close() // every stalled answer ended

	var pico, tokens int64
	finished := middlewaretest.Of[middleware.CallFinished](rec)
	for _, e := range finished {
		for _, a := range e.Facts.Attempts {
			pico += a.CostPico
			tokens += a.Usage.Total()
		}
	}
	// A reservation whose reply a caller's deadline cut is released in
	// the background (BudgetStore.Reserve), within 2s.
	var rem budget.Remaining
	for end := time.Now().Add(3 * time.Second); ; {
		if rem, err = ledger.Remaining(ctx, "devops"); err != nil {
			t.Fatal(err)
		}
		if rem.Reserved.IsZero() || time.Now().After(end) {
			break
		}
		runtime.Gosched()
	}
	if len(finished) != calls {
		t.Fatalf("%d calls reported, %d made", len(finished), calls)
	}
	want := budget.Amount{USDMicros: (pico + 999_999) / 1_000_000, Tokens: tokens}
	if rem.Used != want || !rem.Reserved.IsZero() {
		t.Fatalf("seed %d: ledger used %+v, reserved %+v; want used %+v (the reports' %d pico-USD), nothing reserved (%d calls, %d refused)",
			seed, rem.Used, rem.Reserved, want, pico, calls, refused)
	}
	if refused == 0 || refused == calls {
		t.Errorf("%d of %d calls refused: the budget did not bind", refused, calls)
	}
	t.Logf("%d calls, %d refused, ledger %+v", calls, refused, rem.Used)
}
