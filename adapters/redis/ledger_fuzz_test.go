package redis_test

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/adapters/redis"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
)

// ledgerHold is one reservation held in both stores, and what the model
// says it holds: its window and its need.
type ledgerHold struct {
	holds  [2]budget.Hold
	window string // the window ID the reservation was made in
	need   budget.Amount
}

// FuzzStoresAgree plays a sequence of ledger operations the input decodes
// — reservations of any size, settlements of more or less than reserved
// (exact costs in pico-dollars), releases, the clock moving on (into the
// next day: a rollover of a daily ledger), soft-limit marks, and rounds of
// concurrent reservations and of concurrent settlements — on the
// MemoryStore and on the Redis BudgetStore (the test server,
// TOKENWISE_REDIS_ADDR) alike, and after each operation checks: both
// stores admit and refuse the same reservations (a refusal an
// *ExceededError matching budget.ErrExceeded); both read the same balance;
// on a daily or unbounded ledger the balance is the model's — the exact
// sum of the window's settlements rounded up once to a micro-dollar, the
// reservations still held — so nothing is lost or counted twice; a
// reservation is admitted only when it fits the limit, and concurrent
// reservations together never exceed it; a mark is new once per flag.
func FuzzStoresAgree(f *testing.F) {
	f.Add([]byte{0, 100, 1, 0, 50, 0, 60, 4, 0, 1, 2, 3, 6, 7, 200, 8, 5, 9, 10, 3, 0, 80})
	f.Add([]byte{1, 10, 0, 0, 5, 0, 5, 0, 5, 8, 3, 4, 0, 255, 255, 7, 255, 6, 9, 0, 3})
	f.Add([]byte{2, 255, 2, 3, 0, 1, 0, 2, 0, 3, 9, 9, 9, 4, 0, 99, 99, 99, 7, 1, 5, 1})
	f.Add([]byte{0, 3, 3, 8, 8, 8, 8, 9, 1, 0, 1, 7, 255, 0, 1, 4, 1, 1, 1, 1, 1, 1, 1, 1})
	c := testRedis(f)
	prefix := testPrefix(f, c)
	ctx := context.Background()
	var n int
	var nmu sync.Mutex
	f.Fuzz(func(t *testing.T, data []byte) {
		next := func() byte {
			if len(data) == 0 {
				return 0
			}
			b := data[0]
			data = data[1:]
			return b
		}
		stores := [2]budget.Store{budget.NewMemoryStore(), redis.NewBudgetStore(c)}
		names := [2]string{"memory", "redis"}
		nmu.Lock()
		n++
		key := fmt.Sprintf("%s:budget:fuzz:%d", prefix, n)
		nmu.Unlock()
		// Each input's keys go with it: the fuzz engine's workers are
		// stopped without the target's own cleanup, and thousands of keys
		// left with a ledger's long expiry slow Redis's expiry of every
		// other test's keys (TestCacheStoreTTL waited 30 s in vain).
		t.Cleanup(func() {
			iter := c.Scan(ctx, 0, "*"+key+"[:}]*", 1000).Iterator()
			for iter.Next(ctx) {
				c.Del(ctx, iter.Val())
			}
		})

		t0 := time.Date(2026, 3, 31, 23, 0, 0, 0, time.UTC)
		now := t0
		kind := next() % 3
		window := func() budget.Window {
			switch kind {
			case 0:
				return budget.WindowFor(budget.PeriodDaily, 0, now)
			case 1:
				return budget.Window{}
			}
			return budget.Window{Rolling: time.Hour}
		}
		modelled := kind != 2 // a rolling window's spend leaves it by buckets: compared between the stores only
		limit := budget.Amount{USDMicros: int64(next())*1000 + 1}
		if next()%2 == 1 {
			limit.Tokens = int64(next())*100 + 1
		}
		const ttl = 30 * 24 * time.Hour // longer than any clock the input moves: no reservation expires
		spent := map[string]*big.Int{}  // window ID -> exact pico-dollars settled
		tokens := map[string]int64{}
		var held []*ledgerHold
		marked := map[string]bool{}
		id := 0

		check := func(step string) {
			t.Helper()
			w := window()
			var bal [2]budget.Balance
			for i, s := range stores {
				var err error
				if bal[i], err = s.Balance(ctx, key, w, now); err != nil {
					t.Fatalf("%s: %s balance: %v", step, names[i], err)
				}
			}
			if bal[0] != bal[1] {
				t.Fatalf("%s: memory %+v, redis %+v", step, bal[0], bal[1])
			}
			if !modelled {
				return
			}
			want := budget.Balance{}
			if p := spent[w.ID()]; p != nil {
				want.Used = budget.Amount{USDMicros: ceilMicro(p), Tokens: tokens[w.ID()]}
			}
			for _, h := range held {
				if h.window == w.ID() {
					want.Reserved = want.Reserved.Add(h.need)
					want.InFlight++
				}
			}
			if bal[0] != want { // (a Store's balance carries no limit: its caller knows it)
				t.Fatalf("%s: both stores read %+v, want %+v", step, bal[0], want)
			}
		}
		reserve := func(i int, need budget.Amount, rid string) (budget.Hold, error) {
			h, err := stores[i].Reserve(ctx, budget.Reservation{Key: key, ID: rid, Need: need, Limit: limit, Window: window(), Now: now, TTL: ttl})
			if err != nil {
				var ee *budget.ExceededError
				if !errors.As(err, &ee) || !errors.Is(err, budget.ErrExceeded) {
					t.Fatalf("%s reserve %+v: %T %v, want an *ExceededError", names[i], need, err, err)
				}
			}
			return h, err
		}
		fits := func(need budget.Amount) bool {
			w := window()
			used := budget.Amount{}
			if p := spent[w.ID()]; p != nil {
				used = budget.Amount{USDMicros: ceilMicro(p), Tokens: tokens[w.ID()]}
			}
			for _, h := range held {
				if h.window == w.ID() {
					used = used.Add(h.need)
				}
			}
			used = used.Add(need)
			return (limit.USDMicros == 0 || used.USDMicros <= limit.USDMicros) && (limit.Tokens == 0 || used.Tokens <= limit.Tokens)
		}
		settle := func(h *ledgerHold, actual budget.Amount) {
			t.Helper()
			for i := range stores {
				if _, err := h.holds[i].Settle(ctx, actual, now); err != nil {
					t.Fatalf("%s settle: %v", names[i], err)
				}
			}
		}
		charge := func(h *ledgerHold, actual budget.Amount) {
			p := spent[h.window]
			if p == nil {
				p = new(big.Int)
				spent[h.window] = p
			}
			p.Add(p, new(big.Int).Add(new(big.Int).Mul(big.NewInt(actual.USDMicros), big.NewInt(1_000_000)), big.NewInt(actual.SubMicroPico)))
			tokens[h.window] += actual.Tokens
		}
		amount := func(scale int64) budget.Amount { // pico-dollars of up to scale micro-dollars, tokens
			micro := int64(next()) * scale / 255
			return budget.Exact(int64(next())*4, micro*1_000_000+int64(next())*3_921)
		}

		for step := 0; len(data) > 0 && step < 64; step++ {
			op := next() % 10
			name := fmt.Sprintf("step %d op %d", step, op)
			switch op {
			case 0, 1, 2: // a reservation, both stores
				need := budget.Amount{USDMicros: int64(next()) * 40, Tokens: int64(next())}
				id++
				rid := fmt.Sprint(id)
				h0, err0 := reserve(0, need, rid)
				h1, err1 := reserve(1, need, rid)
				if (err0 == nil) != (err1 == nil) {
					t.Fatalf("%s: reserve %+v: memory %v, redis %v", name, need, err0, err1)
				}
				if modelled && (err0 == nil) != fits(need) {
					t.Fatalf("%s: reserve %+v admitted %v, it fits the limit %+v: %v", name, need, err0 == nil, limit, fits(need))
				}
				if err0 == nil {
					held = append(held, &ledgerHold{holds: [2]budget.Hold{h0, h1}, window: window().ID(), need: need})
				}
			case 3, 4: // a settlement of more or less than reserved
				if len(held) == 0 {
					continue
				}
				k := int(next()) % len(held)
				h := held[k]
				actual := amount(h.need.USDMicros*2 + 1)
				settle(h, actual)
				charge(h, actual)
				held = append(held[:k], held[k+1:]...)
				// A second settle does nothing.
				settle(h, actual)
			case 5: // a release
				if len(held) == 0 {
					continue
				}
				k := int(next()) % len(held)
				settle(held[k], budget.Amount{})
				held = append(held[:k], held[k+1:]...)
			case 6: // the clock moves on: minutes, or into the next day
				if next()%2 == 0 {
					now = now.Add(time.Duration(next()) * time.Minute / 4)
				} else {
					now = now.Add(24 * time.Hour)
				}
			case 7: // a soft-limit mark
				flag := fmt.Sprintf("%s:warn:%s:%d", key, window().ID(), next()%3)
				for i, s := range stores {
					fresh, err := s.Mark(ctx, flag, ttl, now)
					if err != nil {
						t.Fatal(err)
					}
					if fresh == marked[flag+names[i]] {
						t.Fatalf("%s: %s Mark(%s) = %v, marked before: %v", name, names[i], flag, fresh, marked[flag+names[i]])
					}
					marked[flag+names[i]] = true
				}
			case 8: // concurrent reservations: together within the limit, then released
				k := int(next())%6 + 2
				needs := make([]budget.Amount, k)
				for j := range needs {
					needs[j] = budget.Amount{USDMicros: int64(next()) * 40, Tokens: int64(next())}
				}
				for i := range stores {
					before, err := stores[i].Balance(ctx, key, window(), now)
					if err != nil {
						t.Fatal(err)
					}
					var wg sync.WaitGroup
					hs := make([]budget.Hold, k)
					for j := range needs {
						wg.Go(func() {
							hs[j], _ = stores[i].Reserve(ctx, budget.Reservation{Key: key, ID: fmt.Sprintf("c%d-%d", step, j), Need: needs[j],
								Limit: limit, Window: window(), Now: now, TTL: ttl})
						})
					}
					wg.Wait()
					total := before.Used.Add(before.Reserved)
					for j, h := range hs {
						if h != nil {
							total = total.Add(needs[j])
						}
					}
					over := limit.USDMicros > 0 && total.USDMicros > limit.USDMicros && total.USDMicros > before.Used.Add(before.Reserved).USDMicros ||
						limit.Tokens > 0 && total.Tokens > limit.Tokens && total.Tokens > before.Used.Tokens+before.Reserved.Tokens
					if over {
						t.Fatalf("%s: %s admitted concurrent reservations to %+v, over the limit %+v", name, names[i], total, limit)
					}
					for _, h := range hs {
						if h != nil {
							wg.Go(func() {
								if _, err := h.Settle(ctx, budget.Amount{}, now); err != nil {
									t.Error(err)
								}
							})
						}
					}
					wg.Wait()
				}
			case 9: // every held reservation settled at once, concurrently
				actuals := make([]budget.Amount, len(held))
				for j, h := range held {
					actuals[j] = amount(h.need.USDMicros + 1)
					charge(h, actuals[j])
				}
				for i := range stores {
					var wg sync.WaitGroup
					for j, h := range held {
						wg.Go(func() {
							if _, err := h.holds[i].Settle(ctx, actuals[j], now); err != nil {
								t.Error(err)
							}
						})
					}
					wg.Wait()
				}
				held = nil
			}
			check(name)
		}
		for _, h := range held {
			settle(h, budget.Amount{})
		}
		held = nil
		check("all released")
	})
}
