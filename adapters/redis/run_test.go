package redis_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tokenwise/tokenwise/adapters/redis"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
)

// Concurrent calls of one run on two clients (two replicas) are numbered
// 1..n exactly once each, every one sees the start set by the first call,
// and the run's key expires idle after its last call; another run key
// counts on its own.
func TestRunStoreCountsExactlyAcrossReplicas(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	c2 := goredis.NewClient(&goredis.Options{Addr: redisAddr()})
	t.Cleanup(func() { c2.Close() })
	const idle = 10 * time.Minute
	stores := []*redis.RunStore{redis.NewRunStore(c, prefix, idle), redis.NewRunStore(c2, prefix, idle)}
	ctx := context.Background()

	first := time.UnixMilli(1_700_000_000_000)
	seq, start, err := stores[0].Next(ctx, "team/run-1", first)
	if err != nil || seq != 1 || !start.Equal(first) {
		t.Fatalf("first call: %d %v %v, want 1 and the caller's now", seq, start, err)
	}
	const workers, each = 16, 40
	var mu sync.Mutex
	seqs := []int{1}
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			for range each {
				n, st, err := stores[i%2].Next(ctx, "team/run-1", time.Now())
				if err != nil {
					t.Error(err)
					return
				}
				if !st.Equal(first) {
					t.Errorf("call %d saw start %v, want %v (the first call's)", n, st, first)
				}
				mu.Lock()
				seqs = append(seqs, n)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(seqs)
	for i, n := range seqs {
		if n != i+1 {
			t.Fatalf("numbers %v...: want 1..%d, each once", seqs[max(i-2, 0):i+1], workers*each+1)
		}
	}
	if len(seqs) != workers*each+1 {
		t.Fatalf("%d numbers, want %d", len(seqs), workers*each+1)
	}

	ttl, err := c.PTTL(ctx, stores[0].Key("team/run-1")).Result()
	if err != nil || ttl <= idle-time.Minute || ttl > idle {
		t.Fatalf("run key TTL %v (%v), want about %v", ttl, err, idle)
	}
	// Other runs, and the same run id of another team, count on their own.
	for _, key := range []string{"team/run-2", "other/run-1"} {
		if n, _, err := stores[1].Next(ctx, key, time.Now()); err != nil || n != 1 {
			t.Fatalf("%s: call %d (%v), want 1", key, n, err)
		}
	}
	// A forgotten run (its key expired) starts again.
	if err := c.Del(ctx, stores[0].Key("team/run-1")).Err(); err != nil {
		t.Fatal(err)
	}
	later := first.Add(time.Hour)
	if n, st, err := stores[1].Next(ctx, "team/run-1", later); err != nil || n != 1 || !st.Equal(later) {
		t.Fatalf("after expiry: call %d start %v (%v), want 1 at %v", n, st, err, later)
	}
}

// A run whose store cannot be reached refuses its call number with an
// error matching middleware.ErrRunStore.
func TestRunStoreUnreachable(t *testing.T) {
	c := goredis.NewClient(&goredis.Options{Addr: redisAddr()})
	c.Close()
	run := middleware.OpenSharedRun("r", "team/r", redis.NewRunStore(c, "twtest-closed", time.Minute))
	if _, err := run.NextSeqContext(context.Background()); !errors.Is(err, middleware.ErrRunStore) {
		t.Fatalf("NextSeqContext on a closed client: %v, want ErrRunStore", err)
	}
}

// One shared run's budget, charged by the budget layers of two replicas
// at once (each with its own Run on the same run key), is one ledger in
// Redis: what the provider billed never exceeds the run's limit, the
// ledger holds exactly that, and the ledger key expires with the run.
func TestRedisSharedRunBudget(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	const idle, limit = 20 * time.Minute, 3_000
	runs := redis.NewRunStore(c, prefix, idle)
	var billed atomic.Int64
	provider := middleware.HandlerFunc(func(_ context.Context, req *middleware.Request) (*middleware.Response, error) {
		// Within the reservation (the estimated input, which is more than
		// one token, plus max_tokens), as an OpenAI model bills.
		u := middleware.Usage{InputTokens: 1, OutputTokens: int64(req.MaxTokens) / 2}
		billed.Add(u.Total())
		return &middleware.Response{Model: req.Model, Message: middleware.Message{Role: "assistant", Content: "ok"}, Usage: u}, nil
	})
	var h [2]middleware.Handler
	var b [2]*budget.Budget
	for i := range h {
		var err error
		b[i], err = budget.New(budget.Config{Name: "p", KeyPrefix: prefix, Run: budget.Amount{Tokens: limit}, MinOutputTokens: 1},
			budget.WithStore(redis.NewBudgetStore(c)))
		if err != nil {
			t.Fatal(err)
		}
		h[i] = middleware.Then(provider, b[i].Middleware())
	}
	replicaRun := [2]*middleware.Run{middleware.OpenSharedRun("run-1", "team/run-1", runs), middleware.OpenSharedRun("run-1", "team/run-1", runs)}
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			ctx := middleware.WithRun(context.Background(), replicaRun[i%2])
			for range 10 {
				req := &middleware.Request{Model: "gpt-4o-mini", MaxTokens: 200, Messages: []middleware.Message{{Role: "user", Content: "hello there"}}}
				_, err := h[i%2].Handle(ctx, req)
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, budget.ErrExceeded):
					refused.Add(1)
				default:
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	spent := billed.Load()
	if ok.Load() == 0 || refused.Load() == 0 {
		t.Fatalf("%d answered, %d refused: want both", ok.Load(), refused.Load())
	}
	if spent > limit {
		t.Fatalf("OVERSHOOT: the provider billed %d tokens of the run's %d", spent, limit)
	}
	for i := range b {
		bal := b[i].RunBalance(replicaRun[i])
		if bal.Used.Tokens != spent || !bal.Reserved.IsZero() || bal.Limit.Tokens != limit {
			t.Fatalf("replica %d reads the run's ledger %+v; the provider billed %d", i, bal, spent)
		}
	}
	// Another run's ledger is its own.
	other := middleware.WithRun(context.Background(), middleware.OpenSharedRun("run-2", "team/run-2", runs))
	if _, err := h[0].Handle(other, &middleware.Request{Model: "gpt-4o-mini", MaxTokens: 200, Messages: []middleware.Message{{Role: "user", Content: "hi"}}}); err != nil {
		t.Fatalf("another run: %v", err)
	}
	keys, err := c.Keys(context.Background(), "{"+b[0].RunKey("team/run-1")+":*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("no ledger keys of the run (%v)", err)
	}
	for _, k := range keys {
		if ttl := c.PTTL(context.Background(), k).Val(); ttl <= 0 || ttl > idle {
			t.Fatalf("ledger key %s expires in %v, want within the run's idle time %v", k, ttl, idle)
		}
	}
	t.Logf("%d answered, %d refused, %d of %d tokens billed", ok.Load(), refused.Load(), spent, limit)
}

// BenchmarkRunStoreNext is the cost a shared run adds to each call: one
// script (count, start, TTL), here with 16 calls of one run at once.
func BenchmarkRunStoreNext(b *testing.B) {
	c := testRedis(b)
	s := redis.NewRunStore(c, testPrefix(b, c), time.Hour)
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := s.Next(context.Background(), "team/run", time.Now()); err != nil {
				b.Error(err)
			}
		}
	})
}

// A shared run's ledger lives idle after its last reservation, and a
// reservation extended while its call runs keeps the ledger's keys at
// least two TTLs more: a call longer than the run's idle time does not
// lose its run's ledger.
func TestRedisRunLedgerTTL(t *testing.T) {
	c := testRedis(t)
	key := testPrefix(t, c) + ":budget:p:run:team/r"
	s := redis.NewBudgetStore(c)
	ctx := context.Background()
	const idle = 10 * time.Minute
	r := budget.Reservation{Key: key, ID: "a", Need: budget.Amount{Tokens: 10}, Limit: budget.Amount{Tokens: 100}, Now: time.Now(), TTL: time.Minute, Idle: idle}
	h, err := s.Reserve(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	ledger := "{" + key + ":all}:l"
	if ttl := c.PTTL(ctx, ledger).Val(); ttl <= idle-time.Minute || ttl > idle {
		t.Fatalf("ledger TTL %v, want the run's idle time %v", ttl, idle)
	}
	// The call outlives most of the idle time: its keys are about to go.
	for _, k := range []string{ledger, "{" + key + ":all}:z"} {
		if err := c.PExpire(ctx, k, time.Second).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// (By 2m: an extension to the reservation's own expiry, within the
	// millisecond of the reservation, would not move it.)
	if err := h.(budget.Extender).Extend(ctx, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{ledger, "{" + key + ":all}:z"} {
		if ttl := c.PTTL(ctx, k).Val(); ttl < 4*time.Minute-5*time.Second {
			t.Fatalf("%s expires in %v after an extension by 2m, want about 4m", k, ttl)
		}
	}
	if bal, err := h.Settle(ctx, budget.Amount{Tokens: 7}, time.Now()); err != nil || bal.Used.Tokens != 7 {
		t.Fatalf("settle after the extension: %+v %v", bal, err)
	}
}

// The sums of a run's calls, added by two replicas (two clients), are one
// sum in Redis: SharedState in either replica reports every call, exact
// to the pico-dollar and the token, per model; a run Redis does not know
// has no sums; the sums expire with the run.
func TestRunStoreSumsCallsAcrossReplicas(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	c2 := goredis.NewClient(&goredis.Options{Addr: redisAddr()})
	t.Cleanup(func() { c2.Close() })
	stores := []*redis.RunStore{redis.NewRunStore(c, prefix, 10*time.Minute), redis.NewRunStore(c2, prefix, 10*time.Minute)}
	ctx := context.Background()
	runs := []*middleware.Run{middleware.OpenSharedRun("run-1", "team/run-1", stores[0]), middleware.OpenSharedRun("run-1", "team/run-1", stores[1])}
	_, all := middleware.StartRun(ctx, "run-1")
	calls := []middleware.CallRecord{
		{CallFacts: middleware.CallFacts{Model: "gpt-4o-mini", CostPico: 1_234_567_891, Cache: middleware.CacheMiss}, Usage: middleware.Usage{InputTokens: 1200, OutputTokens: 80, CachedInputTokens: 1024}, Latency: 900 * time.Millisecond},
		{CallFacts: middleware.CallFacts{Model: "gpt-4o-mini", Cache: middleware.CacheHit, SavedPico: 987_654_321, Saved: middleware.Usage{InputTokens: 1200, OutputTokens: 80}}, Latency: time.Millisecond},
		{CallFacts: middleware.CallFacts{Model: "gpt-4o", CostPico: 55_000_000_001, Attempts: []middleware.Attempt{
			{Model: "gpt-4o-mini", Usage: middleware.Usage{InputTokens: 10}, CostPico: 1},
			{Model: "gpt-4o", Usage: middleware.Usage{InputTokens: 3000, OutputTokens: 500, ReasoningTokens: 200}, CostPico: 55_000_000_000},
		}}, Usage: middleware.Usage{InputTokens: 3010, OutputTokens: 500, ReasoningTokens: 200}, Latency: 2 * time.Second},
		{CallFacts: middleware.CallFacts{Model: "org/ft:v1"}, Err: errors.New("upstream 500")},
	}
	for i, cr := range calls {
		if _, err := runs[i%2].NextSeqContext(ctx); err != nil {
			t.Fatal(err)
		}
		runs[i%2].Record(cr)
		all.Record(cr)
	}
	want := all.Totals()
	want.Wall = 0
	for i, r := range runs {
		st, shared, lost, err := r.SharedState(ctx)
		got := st.Sums
		if err != nil || !shared || lost != 0 {
			t.Fatalf("replica %d: shared %v lost %d err %v", i, shared, lost, err)
		}
		if got.Wall <= 0 || got.Wall > time.Minute {
			t.Errorf("replica %d: wall %v, want the time since the run's first call", i, got.Wall)
		}
		got.Wall = 0
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("replica %d: sums\n%+v\nwant every replica's calls\n%+v", i, got, want)
		}
	}
	if _, ok, err := stores[0].Sums(ctx, "team/never-called"); ok || err != nil {
		t.Fatalf("a run Redis does not know: ok %v err %v", ok, err)
	}
	if st, ok, err := stores[1].Sums(ctx, "team/run-1"); !ok || err != nil || st.Calls != len(calls) || st.Start.IsZero() {
		t.Fatalf("the run's state: %+v %v %v, want its %d numbered calls and its start", st, ok, err, len(calls))
	}
	if ttl := c.PTTL(ctx, stores[0].Key("team/run-1")).Val(); ttl <= 9*time.Minute || ttl > 10*time.Minute {
		t.Fatalf("the run's hash expires in %v, want its idle time after the last call", ttl)
	}
}
