package redis_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goopenai "github.com/sashabaranov/go-openai"
	"go.uber.org/goleak"

	oaiadapter "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/adapters/redis"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

func window() budget.Window {
	return budget.WindowFor(budget.PeriodDaily, 0, time.Now())
}

func TestRedisBudgetReserveSettle(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	c := testRedis(t)
	key := testPrefix(t, c) + ":budget:p:team"
	s := redis.NewBudgetStore(c)
	ctx := context.Background()
	w := window()
	lim := budget.Amount{USDMicros: 1000, Tokens: 100}
	r := budget.Reservation{Key: key, ID: "a", Need: budget.Amount{USDMicros: 600, Tokens: 50}, Limit: lim, Window: w, Now: time.Now(), TTL: time.Minute}
	h, err := s.Reserve(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	r.ID = "b"
	_, err = s.Reserve(ctx, r)
	var e *budget.ExceededError
	if !errors.As(err, &e) || e.Unit != budget.UnitUSD || e.Reserved != 600 || e.Need != 600 || e.Limit != 1000 {
		t.Fatalf("second reserve: %v", err)
	}
	bal, err := h.Settle(ctx, budget.Amount{USDMicros: 400, Tokens: 30}, time.Now())
	if err != nil || bal.Used != (budget.Amount{USDMicros: 400, Tokens: 30}) || !bal.Reserved.IsZero() || bal.InFlight != 0 {
		t.Fatalf("settle: %+v %v", bal, err)
	}
	if _, err := h.Settle(ctx, budget.Amount{USDMicros: 400}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if bal, _ := s.Balance(ctx, key, w, time.Now()); bal.Used.USDMicros != 400 {
		t.Fatalf("a second settle changed the ledger: %+v", bal)
	}
	if first, _ := s.Mark(ctx, key+":warn", time.Minute, time.Now()); !first {
		t.Fatal("first mark not first")
	}
	if first, _ := s.Mark(ctx, key+":warn", time.Minute, time.Now()); first {
		t.Fatal("second mark is first")
	}
}

// A reservation never settled is charged at its reserved amount when its
// TTL expires (Redis' clock); a settle that comes after all corrects the
// charge to the actual amount.
func TestRedisReservationTTL(t *testing.T) {
	c := testRedis(t)
	key := testPrefix(t, c) + ":budget:p:team"
	s := redis.NewBudgetStore(c)
	ctx := context.Background()
	w := window()
	r := budget.Reservation{Key: key, ID: "x", Need: budget.Amount{Tokens: 90}, Limit: budget.Amount{Tokens: 100}, Window: w, Now: time.Now(), TTL: 200 * time.Millisecond}
	if _, err := s.Reserve(ctx, r); err != nil {
		t.Fatal(err)
	}
	if bal, _ := s.Balance(ctx, key, w, time.Now()); bal.InFlight != 1 || bal.Reserved.Tokens != 90 {
		t.Fatalf("balance %+v", bal)
	}
	waitFreed(t, s, key, w, 200*time.Millisecond)
	if bal, _ := s.Balance(ctx, key, w, time.Now()); bal.Used.Tokens != 90 {
		t.Fatalf("expired reservation not charged: %+v", bal)
	}
	r.ID = "y"
	var e *budget.ExceededError
	if _, err := s.Reserve(ctx, r); !errors.As(err, &e) || e.Used != 90 {
		t.Fatalf("after TTL: %v, want a refusal with the expired reservation charged", err)
	}

	// A late settle (the process lived, its heartbeat failed) corrects the
	// charge to what the call cost.
	r.ID, r.Need = "z", budget.Amount{Tokens: 10}
	h, err := s.Reserve(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	waitFreed(t, s, key, w, 200*time.Millisecond)
	if ext, ok := h.(budget.Extender); !ok || !errors.Is(ext.Extend(ctx, time.Minute), budget.ErrReservationExpired) {
		t.Fatal("an expired reservation was extended")
	}
	bal, err := h.Settle(ctx, budget.Amount{Tokens: 4}, time.Now())
	if err != nil || bal.Used.Tokens != 94 {
		t.Fatalf("late settle: %+v %v, want 90 + 4 used", bal, err)
	}
}

// Extend keeps a reservation past its TTL; a settled one cannot be extended.
func TestRedisReservationExtend(t *testing.T) {
	c := testRedis(t)
	key := testPrefix(t, c) + ":budget:p:team"
	s := redis.NewBudgetStore(c)
	ctx := context.Background()
	w := window()
	h, err := s.Reserve(ctx, budget.Reservation{Key: key, ID: "e", Need: budget.Amount{Tokens: 5}, Window: w, Now: time.Now(), TTL: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ext := h.(budget.Extender)
	if err := ext.Extend(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	bal, _ := s.Balance(ctx, key, w, time.Now())
	if bal.InFlight != 1 {
		t.Fatalf("extended reservation gone: %+v", bal)
	}
	if bal, err := h.Settle(ctx, budget.Amount{Tokens: 3}, time.Now()); err != nil || bal.Used.Tokens != 3 || bal.InFlight != 0 {
		t.Fatalf("settle: %+v %v", bal, err)
	}
	if err := ext.Extend(ctx, time.Hour); !errors.Is(err, budget.ErrReservationExpired) {
		t.Fatalf("extend after settle: %v", err)
	}
}

// waitFreed polls the ledger (Redis keeps real time, which a test cannot
// fake) until no reservation is held, failing after ttl plus a margin.
func waitFreed(t *testing.T, s *redis.BudgetStore, key string, w budget.Window, ttl time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(ttl + 2*time.Second)
	for {
		bal, err := s.Balance(context.Background(), key, w, time.Now())
		if err == nil && bal.InFlight == 0 && bal.Reserved.IsZero() {
			return time.Since(start)
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("reservation not freed within TTL %s: %+v %v", ttl, bal, err)
		}
	}
}

func TestRedisBudgetConcurrentNeverOvershoots(t *testing.T) {
	c := testRedis(t)
	key := testPrefix(t, c) + ":budget:p:team"
	s := redis.NewBudgetStore(c)
	ctx := context.Background()
	w := window()
	lim := budget.Amount{USDMicros: 100_000}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 50 {
				r := budget.Reservation{Key: key, ID: fmt.Sprintf("%d-%d", g, i), Need: budget.Amount{USDMicros: 1_000}, Limit: lim, Window: w, Now: time.Now(), TTL: time.Minute}
				h, err := s.Reserve(ctx, r)
				if err != nil {
					continue
				}
				if _, err := h.Settle(ctx, budget.Amount{USDMicros: 700 + int64(i%4)*100}, time.Now()); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	bal, err := s.Balance(ctx, key, w, time.Now())
	if err != nil || bal.Used.USDMicros > lim.USDMicros || bal.InFlight != 0 || bal.Used.USDMicros < lim.USDMicros-1_000 {
		t.Fatalf("balance %+v over limit %d", bal, lim.USDMicros)
	}
}

// The child process of TestRedisBudgetFourProcesses: it runs calls through
// the full chain (go-openai → tokenwise transport → budget on Redis →
// openaitest) and prints its results. Not a test on its own.
func TestRedisBudgetChild(t *testing.T) {
	mode := os.Getenv("TOKENWISE_BUDGET_CHILD")
	if mode == "" {
		t.Skip("child process of TestRedisBudgetFourProcesses")
	}
	c := testRedis(t)
	p := childPolicy(os.Getenv("TOKENWISE_BUDGET_PREFIX"))
	srv := openaitest.NewServer(t)
	if mode == "hang" {
		// The matcher runs when the request reached the server, i.e. after
		// the budget reserved: tell the parent, then hang.
		srv.On(func(*openaitest.ChatRequest) bool { fmt.Println("CALLING"); return true }).
			Reply(openaitest.Reply{Content: "late", Latency: time.Hour})
	} else {
		srv.On(openaitest.Model("gpt-4o")).Reply(openaitest.Text(strings.Repeat("x", 400)), openaitest.ServerError(),
			openaitest.Text(strings.Repeat("y", 200)), openaitest.Text("short"))
	}
	chain := llmwrap.MustBuild(p, llmwrap.WithBudgetStore(redis.NewBudgetStore(c)), llmwrap.WithLogger(slog.New(slog.DiscardHandler)))
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	cfg := goopenai.DefaultConfig("k")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = oaiadapter.NewHTTPClient(chain, oaiadapter.WithBaseTransport(base))
	client := goopenai.NewClientWithConfig(cfg)
	team := "sre"
	if mode == "hang" {
		team = "oncall" // a fresh ledger: the hanging call must get its reservation
	}
	ctx := middleware.WithTeam(context.Background(), team)
	if mode == "hang" {
		client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o", Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "hang"}}})
		return
	}
	var ok, rejected, failed int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 25 {
				_, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o",
					Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: fmt.Sprintf("check disk %d-%d", g, i)}}})
				mu.Lock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, budget.ErrExceeded):
					rejected++
				default:
					failed++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	fmt.Printf("RESULT %d %d %d\n", ok, rejected, failed)
}

func childPolicy(prefix string) *policies.Policy {
	return &policies.Policy{Version: 1, Name: "procs", Budget: policies.Budget{
		Request: policies.RequestBudget{MaxOutputTokens: 200},
		Team:    policies.TeamBudget{Period: policies.PeriodDaily, MaxUSD: policies.MicroUSD(10_000)},
		Store:   policies.BudgetStore{Kind: policies.StoreRedis, KeyPrefix: prefix, ReservationTTL: policies.Duration(time.Second)},
	}}
}

// childBudget is the budget layer of childPolicy, built on its own to read
// the team's ledger.
func childBudget(prefix string, store budget.Store) (*budget.Budget, error) {
	p := childPolicy(prefix)
	return budget.New(budget.Config{
		Name:           p.Name,
		Request:        budget.RequestLimit{MaxOutputTokens: 200},
		Team:           budget.TeamLimit{Period: budget.PeriodDaily, Limit: budget.Amount{USDMicros: 10_000}},
		KeyPrefix:      prefix,
		ReservationTTL: time.Second,
	}, budget.WithStore(store), budget.WithCatalog(llmwrap.Catalog(p)))
}

func child(t *testing.T, mode, prefix string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestRedisBudgetChild$", "-test.v")
	cmd.Env = append(os.Environ(), "TOKENWISE_BUDGET_CHILD="+mode, "TOKENWISE_BUDGET_PREFIX="+prefix, "TOKENWISE_REDIS_ADDR="+redisAddr())
	return cmd
}

// Four separate processes (8 concurrent callers each) share a $0.01 daily
// team budget on one Redis: the settled spend stays within it.
func TestRedisBudgetFourProcesses(t *testing.T) {
	if os.Getenv("TOKENWISE_BUDGET_CHILD") != "" {
		t.Skip("in a child")
	}
	c := testRedis(t)
	prefix := testPrefix(t, c)
	store := redis.NewBudgetStore(c)

	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok, rejected, failed int
	for range 4 {
		cmd := child(t, "run", prefix)
		wg.Go(func() {
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("child: %v\n%s", err, out)
				return
			}
			for line := range strings.Lines(string(out)) {
				if f := strings.Fields(line); len(f) == 4 && f[0] == "RESULT" {
					a, _ := strconv.Atoi(f[1])
					b, _ := strconv.Atoi(f[2])
					c, _ := strconv.Atoi(f[3])
					mu.Lock()
					ok, rejected, failed = ok+a, rejected+b, failed+c
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	b, err := childBudget(prefix, store)
	if err != nil {
		t.Fatal(err)
	}
	rem, err := b.Remaining(context.Background(), "sre")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("4 processes: ok %d, rejected %d, failed %d; spent %s of %s", ok, rejected, failed,
		middleware.FormatUSD(rem.Used.USDMicros), middleware.FormatUSD(rem.Limit.USDMicros))
	if ok+rejected+failed != 800 || ok == 0 || rejected == 0 {
		t.Fatalf("calls: ok %d, rejected %d, failed %d", ok, rejected, failed)
	}
	if rem.Used.USDMicros > 10_000 || rem.InFlight != 0 || !rem.Reserved.IsZero() {
		t.Fatalf("over the limit or reservations left: %+v", rem.Balance)
	}
}

// TestExpiredReservationOfADeadProcessIsCharged: a process whose call is in
// flight keeps its reservation alive past the TTL (1s) by extending it;
// once the process is SIGKILLed, the reservation expires within the TTL and
// is charged at its reserved amount — the provider may have billed the
// call — instead of being released and spent again.
func TestExpiredReservationOfADeadProcessIsCharged(t *testing.T) {
	if os.Getenv("TOKENWISE_BUDGET_CHILD") != "" {
		t.Skip("in a child")
	}
	c := testRedis(t)
	prefix := testPrefix(t, c)
	store := redis.NewBudgetStore(c)
	b, err := childBudget(prefix, store)
	if err != nil {
		t.Fatal(err)
	}
	cmd := child(t, "hang", prefix)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && !strings.Contains(sc.Text(), "CALLING") {
	}
	rem, _ := b.Remaining(context.Background(), "oncall")
	if rem.InFlight != 1 || rem.Reserved.IsZero() {
		t.Fatalf("the hanging call holds no reservation: %+v", rem.Balance)
	}
	held := rem.Reserved
	// Alive, the process extends its reservation: after three TTLs it is
	// still held, not charged.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for alive := time.Now(); time.Since(alive) < 3*time.Second; <-tick.C {
		if rem, _ := b.Remaining(context.Background(), "oncall"); rem.InFlight != 1 || rem.Reserved != held || !rem.Used.IsZero() {
			t.Fatalf("a live call's reservation expired after %s (TTL 1s): %+v", time.Since(alive), rem.Balance)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	took := waitFreed(t, store, b.TeamKey("oncall"), rem.Window, time.Second)
	rem, _ = b.Remaining(context.Background(), "oncall")
	t.Logf("killed process's reservation expired %s after the kill (TTL 1s) and was charged: %+v", took.Round(10*time.Millisecond), rem.Balance)
	if rem.Used != held || !rem.Reserved.IsZero() || rem.InFlight != 0 {
		t.Fatalf("after the kill: %+v, want the reservation %+v charged", rem.Balance, held)
	}
}

// BenchmarkRedisReserveSettle16 runs reserve+settle pairs from 16
// concurrent clients on one ledger; pairs/s is reported.
func BenchmarkRedisReserveSettle16(b *testing.B) {
	c := testRedis(b)
	key := testPrefix(b, c) + ":budget:p:team"
	s := redis.NewBudgetStore(c)
	ctx := context.Background()
	w := window()
	need := budget.Amount{USDMicros: 100, Tokens: 10}
	lim := budget.Amount{USDMicros: 1 << 50, Tokens: 1 << 50}
	b.SetParallelism(max(1, 16/runtimeProcs()))
	b.ReportAllocs()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h, err := s.Reserve(ctx, budget.Reservation{Key: key, Need: need, Limit: lim, Window: w, Now: time.Now(), TTL: time.Minute})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := h.Settle(ctx, need, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "pairs/s")
}

// A ledger field that another program overwrote with something that is
// not an integer ("abc", a float) fails the script closed with an error
// naming Redis, the key and the field. Before, the reading scripts took
// such a field for 0: with the spend set to "abc", every reservation was
// granted against an empty ledger and the budget was overspent without
// end (and a settle released its reservation before failing on the field,
// so the spend was not recorded either).
func TestCorruptedLedgerFieldFailsClosed(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	s := redis.NewBudgetStore(c)
	ctx := context.Background()
	now := time.Now()
	lim := budget.Amount{USDMicros: 1000, Tokens: 1000}
	for _, tc := range []struct {
		name  string
		w     budget.Window
		field string
		value string
	}{
		{"daily spend abc", window(), "uu", "abc"},
		{"daily spend float", window(), "uu", "1.5"},
		{"daily spend exponent", window(), "uu", "1e3"},
		{"daily tokens", window(), "ut", "x"},
		{"daily pico", window(), "up", "0.5"},
		{"reserved", window(), "ru", "abc"},
		{"in flight", window(), "n", ""},
		{"rolling bucket", budget.WindowFor(budget.PeriodRolling, time.Hour, now), "", "abc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := prefix + ":budget:p:" + strings.ReplaceAll(tc.name, " ", "-")
			r := budget.Reservation{Key: key, ID: "a", Need: budget.Amount{USDMicros: 10, Tokens: 10}, Limit: lim, Window: tc.w, Now: now, TTL: time.Minute}
			h, err := s.Reserve(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			field := tc.field
			if field == "" {
				cur, _ := tc.w.Bucket(now)
				field = "uu:" + strconv.FormatInt(cur, 10)
			}
			hash := "{" + key + ":" + tc.w.ID() + "}:l"
			if err := c.HSet(ctx, hash, field, tc.value).Err(); err != nil {
				t.Fatal(err)
			}
			_, err = h.Settle(ctx, budget.Amount{USDMicros: 5, Tokens: 5, SubMicroPico: 7}, now)
			checkCorrupt(t, "settle", err, hash, field)
			// The settle failed before writing: the reservation is still
			// held (it is charged when it expires), not released.
			if n, _ := c.ZCard(ctx, "{"+key+":"+tc.w.ID()+"}:z").Result(); n != 1 {
				t.Errorf("after the failed settle, %d reservations are held, want 1", n)
			}
			r.ID = "b"
			_, err = s.Reserve(ctx, r)
			checkCorrupt(t, "reserve", err, hash, field)
			_, err = s.Balance(ctx, key, tc.w, now)
			checkCorrupt(t, "balance", err, hash, field)
		})
	}
}

func checkCorrupt(t *testing.T, op string, err error, hash, field string) {
	t.Helper()
	var se *budget.StoreError
	if !errors.As(err, &se) {
		t.Fatalf("%s on a corrupted field %s: %v, want a *budget.StoreError", op, field, err)
	}
	for _, want := range []string{"redis", hash, "field " + field} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %q does not say %q", op, err, want)
		}
	}
}

// A ledger key of the wrong type (left by another program) is a
// *budget.StoreError naming Redis and the key.
func TestWrongTypeLedgerKeyNamesTheKey(t *testing.T) {
	c := testRedis(t)
	key := testPrefix(t, c) + ":budget:p:team"
	s := redis.NewBudgetStore(c)
	ctx := context.Background()
	w := window()
	hash := "{" + key + ":" + w.ID() + "}:l"
	if err := c.Set(ctx, hash, "a string", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	_, err := s.Reserve(ctx, budget.Reservation{Key: key, ID: "a", Need: budget.Amount{USDMicros: 1}, Limit: budget.Amount{USDMicros: 10}, Window: w, Now: time.Now(), TTL: time.Minute})
	var se *budget.StoreError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "WRONGTYPE") || !strings.Contains(err.Error(), "redis ledger "+hash) {
		t.Fatalf("reserve on a string key: %v, want a StoreError naming redis, WRONGTYPE and %s", err, hash)
	}
}

// clockTransport moves the budget's clock to at when a request is sent:
// the call is reserved before and settled after.
type clockTransport struct {
	base  http.RoundTripper
	clock *atomic.Pointer[time.Time]
	at    time.Time
}

func (c clockTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.clock.Store(&c.at)
	return c.base.RoundTrip(r)
}

// A call reserved at 23:59:59 and answered at 00:00:01 is settled into the
// day it was reserved in, and the soft-limit warning it crosses fires.
// The flag that makes the warning fire once lives a bounded time, in both
// stores: it used to be set with the time left of its window as its TTL,
// which is negative after the window ended, and Redis kept it forever
// (SET NX without expiry), one key per team, day and fraction.
func TestWarningOfACallSettledAfterItsWindowExpires(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	for _, st := range bothStores(t) {
		t.Run(st.name, func(t *testing.T) {
			store := st.store
			marks := &markTTLs{Store: store}
			srv := openaitest.NewServer(t)
			srv.On().Reply(openaitest.Reply{Content: "ok", Usage: &openaitest.Usage{PromptTokens: 600, CompletionTokens: 10}})
			var clock atomic.Pointer[time.Time]
			day1 := time.Date(2026, 2, 28, 23, 59, 59, 0, time.UTC)
			clock.Store(&day1)
			p := &policies.Policy{Version: 1, Name: "late", Budget: policies.Budget{
				Request: policies.RequestBudget{MaxOutputTokens: 100},
				Team:    policies.TeamBudget{Period: policies.PeriodDaily, MaxTokens: 1000},
				WarnAt:  []float64{0.5},
				Store:   policies.BudgetStore{KeyPrefix: prefix + st.name},
			}}
			chain := llmwrap.MustBuild(p, llmwrap.WithBudgetStore(marks), llmwrap.WithLogger(slog.New(slog.DiscardHandler)),
				llmwrap.WithBudgetOptions(budget.WithClock(func() time.Time { return *clock.Load() })))
			cfg := goopenai.DefaultConfig("k")
			cfg.BaseURL = srv.URL
			cfg.HTTPClient = oaiadapter.NewHTTPClient(chain, oaiadapter.WithBaseTransport(clockTransport{base: srv.Transport(), clock: &clock, at: day1.Add(2 * time.Second)}))
			client := goopenai.NewClientWithConfig(cfg)
			var warnings []middleware.BudgetWarning
			ctx := middleware.WithObserver(middleware.WithTeam(context.Background(), "sre"), middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
				if w, ok := e.(middleware.BudgetWarning); ok {
					warnings = append(warnings, w)
				}
			}))
			if _, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o",
				Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "check the disk"}}}); err != nil {
				t.Fatal(err)
			}
			b, err := budget.New(budget.Config{Name: "late", KeyPrefix: prefix + st.name, Team: budget.TeamLimit{Period: budget.PeriodDaily, Limit: budget.Amount{Tokens: 1000}}},
				budget.WithStore(store), budget.WithClock(func() time.Time { return day1 }))
			if err != nil {
				t.Fatal(err)
			}
			if rem, err := b.Remaining(ctx, "sre"); err != nil || rem.Used.Tokens != 610 || rem.Window.Start.Day() != 28 {
				t.Errorf("day 1's ledger: %+v, %v; want the 610 tokens of the call it reserved", rem, err)
			}
			if len(warnings) != 1 || warnings[0].Used != 610 || warnings[0].Fraction != 0.5 {
				t.Errorf("warnings %+v, want one at 0.5 with 610 used", warnings)
			}
			if len(marks.ttls) != 1 || marks.ttls[0] <= 0 {
				t.Errorf("flag TTLs %v, want one positive", marks.ttls)
			}
			if st.name == "redis" {
				keys, err := c.Keys(ctx, prefix+st.name+"*:warn:*").Result()
				if err != nil || len(keys) != 1 {
					t.Fatalf("flag keys %q, %v", keys, err)
				}
				if ttl := c.TTL(ctx, keys[0]).Val(); ttl <= 0 {
					t.Errorf("flag %s has TTL %v: it never expires", keys[0], ttl)
				}
			}
		})
	}
}

// markTTLs records the TTLs of the flags it is asked to set.
type markTTLs struct {
	budget.Store
	ttls []time.Duration
}

func (m *markTTLs) Mark(ctx context.Context, flag string, ttl time.Duration, now time.Time) (bool, error) {
	m.ttls = append(m.ttls, ttl)
	return m.Store.Mark(ctx, flag, ttl, now)
}
