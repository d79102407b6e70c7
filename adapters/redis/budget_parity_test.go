package redis_test

// The memory and Redis ledgers must agree on the same sequence of
// reservations and settlements.

import (
	"context"
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/adapters/redis"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
)

// bothStores returns a MemoryStore and a BudgetStore on the test server.
func bothStores(t *testing.T) []struct {
	name  string
	store budget.Store
} {
	c := testRedis(t)
	return []struct {
		name  string
		store budget.Store
	}{{"memory", budget.NewMemoryStore()}, {"redis", redis.NewBudgetStore(c)}}
}

// A rolling window of one minute (60 buckets of 1 s). Call A reserves at
// t0 and is still in flight a minute later (a long o3-pro answer, a slow
// stream); call B reserves and settles $5 at t0+60s, in the bucket whose
// ring slot A's bucket had. When A then settles, B's $5 stays in the
// window (the MemoryStore used to reset the slot for A's old bucket, and
// B's spend vanished), and A's $7, spent now, is charged to the current
// bucket: both stores hold $12.
func TestRollingLateSettleKeepsNewerSpend(t *testing.T) {
	prefix := testPrefix(t, testRedis(t))
	ctx := context.Background()
	w := budget.Window{Rolling: time.Minute}
	t0 := time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)
	for _, st := range bothStores(t) {
		t.Run(st.name, func(t *testing.T) {
			key := prefix + ":budget:rolling:" + st.name
			res := func(id string, now time.Time) budget.Hold {
				h, err := st.store.Reserve(ctx, budget.Reservation{Key: key, ID: id, Need: budget.Amount{USDMicros: 10_000_000},
					Limit: budget.Amount{USDMicros: 100_000_000}, Window: w, Now: now, TTL: time.Hour})
				if err != nil {
					t.Fatal(err)
				}
				return h
			}
			a := res("a", t0)
			b := res("b", t0.Add(60*time.Second))
			if _, err := b.Settle(ctx, budget.Amount{USDMicros: 5_000_000}, t0.Add(60*time.Second)); err != nil {
				t.Fatal(err)
			}
			now := t0.Add(60*time.Second + 500*time.Millisecond)
			if _, err := a.Settle(ctx, budget.Amount{USDMicros: 7_000_000}, now); err != nil {
				t.Fatal(err)
			}
			bal, err := st.store.Balance(ctx, key, w, now)
			if err != nil {
				t.Fatal(err)
			}
			// B's $5 was spent 0.5 s ago: it is in the window whatever
			// is made of A's (which began a minute ago).
			if bal.Used.USDMicros < 5_000_000 {
				t.Errorf("the window holds %d µ$ of settled spend; B's $5, spent 0.5 s ago, is gone", bal.Used.USDMicros)
			}
			if bal.Used.USDMicros != 12_000_000 {
				t.Errorf("the window holds %d µ$, want B's $5 and A's $7, settled now", bal.Used.USDMicros)
			}
			// A's $7 stays for a whole window from its settlement.
			later := now.Add(59 * time.Second)
			if bal, err := st.store.Balance(ctx, key, w, later); err != nil || bal.Used.USDMicros != 12_000_000 {
				t.Errorf("59 s later the window holds %d µ$ (%v), want 12,000,000", bal.Used.USDMicros, err)
			}
		})
	}
}

// A reservation that expired is charged at its reserved amount into the
// bucket current when it expired; when its call settles after both that
// bucket and its own have left the window, the correction that would lower
// the charge is dropped rather than taken off the current bucket's newer
// spend.
func TestRollingLateCorrectionOfAnExpiredReservation(t *testing.T) {
	c := testRedis(t)
	key := testPrefix(t, c) + ":budget:rolling:expired"
	s := redis.NewBudgetStore(c)
	ctx := context.Background()
	w := budget.Window{Rolling: time.Minute}
	t0 := time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)
	lim := budget.Amount{USDMicros: 100_000_000}
	a, err := s.Reserve(ctx, budget.Reservation{Key: key, ID: "a", Need: budget.Amount{USDMicros: 10_000_000}, Limit: lim, Window: w, Now: t0, TTL: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// Redis's clock expires it; a read at t0+30s charges it to that bucket.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(5 * time.Second)
	for {
		bal, err := s.Balance(ctx, key, w, t0.Add(30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if bal.InFlight == 0 {
			if bal.Used.USDMicros != 10_000_000 {
				t.Fatalf("the expired reservation was charged %d µ$, want its $10", bal.Used.USDMicros)
			}
			break
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatal("the reservation did not expire")
		}
	}
	b, err := s.Reserve(ctx, budget.Reservation{Key: key, ID: "b", Need: budget.Amount{USDMicros: 10_000_000}, Limit: lim, Window: w, Now: t0.Add(90 * time.Second), TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Settle(ctx, budget.Amount{USDMicros: 5_000_000}, t0.Add(90*time.Second)); err != nil {
		t.Fatal(err)
	}
	bal, err := a.Settle(ctx, budget.Amount{USDMicros: 3_000_000}, t0.Add(95*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if bal.Used.USDMicros != 5_000_000 {
		t.Errorf("after A's late settle the window holds %d µ$, want B's $5", bal.Used.USDMicros)
	}
}

// settlement is a random settlement of a property test: tiny (a few
// micro-dollars or less, the bulk of an agent's calls), medium (up to $1)
// or large (up to 2^40 µ$), and its exact cost in pico-dollars.
func settlement(r *rand.Rand) (budget.Amount, *big.Int) {
	var a budget.Amount
	switch k := r.IntN(10); {
	case k < 6:
		a = budget.Exact(r.Int64N(100), r.Int64N(3_000_000))
	case k < 9:
		a = budget.Exact(r.Int64N(100_000), r.Int64N(1_000_000_000_000))
	default:
		a = budget.Amount{Tokens: r.Int64N(1 << 40), USDMicros: r.Int64N(1 << 40), SubMicroPico: r.Int64N(1_000_000)}
	}
	p := new(big.Int).Mul(big.NewInt(a.USDMicros), big.NewInt(1_000_000))
	return a, p.Add(p, big.NewInt(a.SubMicroPico))
}

// ceilMicro returns pico-dollars in micro-dollars, rounded up.
func ceilMicro(pico *big.Int) int64 {
	q, m := new(big.Int).QuoRem(pico, big.NewInt(1_000_000), new(big.Int))
	if m.Sign() > 0 {
		q.Add(q, big.NewInt(1))
	}
	return q.Int64()
}

// Random sequences of tiny and large settlements, in a daily and a rolling
// window: after each, both stores' ledgers hold the exact sum of the
// settlements' pico-dollar costs rounded up once to a micro-dollar, and
// agree with each other.
func TestLedgerEqualsExactSumInBothStores(t *testing.T) {
	prefix := testPrefix(t, testRedis(t))
	ctx := context.Background()
	stores := bothStores(t)
	t0 := time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)
	for _, w := range []budget.Window{budget.WindowFor(budget.PeriodDaily, 0, t0), {Rolling: time.Hour}} {
		for seed := range uint64(4) {
			r := rand.New(rand.NewPCG(seed, 7))
			key := fmt.Sprintf("%s:budget:exact:%s:%d", prefix, w.ID(), seed)
			sum, tokens := new(big.Int), int64(0)
			for i := range 150 {
				now := t0.Add(time.Duration(i) * 7 * time.Second) // within both windows
				a, pico := settlement(r)
				if r.IntN(20) == 0 {
					a, pico = budget.Amount{}, new(big.Int) // a release
				}
				sum.Add(sum, pico)
				tokens += a.Tokens
				var bals [2]budget.Balance
				for j, st := range stores {
					h, err := st.store.Reserve(ctx, budget.Reservation{Key: key, ID: fmt.Sprint(i), Need: budget.Amount{USDMicros: 1, Tokens: 1},
						Window: w, Now: now, TTL: time.Hour})
					if err != nil {
						t.Fatal(err)
					}
					if bals[j], err = h.Settle(ctx, a, now); err != nil {
						t.Fatal(err)
					}
				}
				want := budget.Balance{Used: budget.Amount{USDMicros: ceilMicro(sum), Tokens: tokens}}
				for j, st := range stores {
					if bals[j] != want {
						t.Fatalf("%s seed %d, settlement %d (%+v): %s ledger %+v, want %+v (%s pico)", w.ID(), seed, i, a, st.name, bals[j], want, sum)
					}
				}
			}
		}
	}
}
