package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/adapters/redis"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
)

// A ledger whose keys Redis lost while a call was in flight (a restart
// without persistence, an eviction, FLUSHALL) is written again by the
// call's settle: the spend is kept, and the keys it writes expire as a
// ledger's do. Before, the settle recreated the ledger hash without a TTL:
// a key that, with no later reservation, was never deleted.
func TestSettleAfterLedgerLostKeepsSpendAndTTL(t *testing.T) {
	c := testRedis(t)
	key := testPrefix(t, c) + ":budget:p:team"
	s := redis.NewBudgetStore(c)
	ctx := context.Background()
	for _, w := range []budget.Window{window(), budget.WindowFor(budget.PeriodRolling, time.Hour, time.Now())} {
		r := budget.Reservation{Key: key, ID: "a", Need: budget.Amount{USDMicros: 600, Tokens: 50},
			Limit: budget.Amount{USDMicros: 1000, Tokens: 100}, Window: w, Now: time.Now(), TTL: time.Minute}
		h, err := s.Reserve(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		// Redis loses the ledger's keys (only this test's keys are deleted:
		// the server is shared).
		base := "{" + key + ":" + w.ID() + "}"
		if err := c.Del(ctx, base+":l", base+":z", base+":x").Err(); err != nil {
			t.Fatal(err)
		}
		bal, err := h.Settle(ctx, budget.Amount{USDMicros: 400, Tokens: 30}, time.Now())
		if err != nil || bal.Used != (budget.Amount{USDMicros: 400, Tokens: 30}) || !bal.Reserved.IsZero() {
			t.Fatalf("settle after the ledger was lost: %+v %v", bal, err)
		}
		iter := c.Scan(ctx, 0, "*"+key+"*", 100).Iterator()
		n := 0
		for iter.Next(ctx) {
			n++
			if ttl := c.PTTL(ctx, iter.Val()).Val(); ttl < 0 {
				t.Errorf("window %s: key %s has no TTL after the settle (PTTL %v)", w.ID(), iter.Val(), ttl)
			}
		}
		if n == 0 {
			t.Fatalf("window %s: the settle wrote no ledger", w.ID())
		}
	}
}

// A ledger whose hash Redis evicted (maxmemory with an eviction policy)
// while its set of reservations stayed still counts the reservations in
// flight: a new reservation is weighed against them, and a settle does not
// take them off twice. Before, the reserved totals restarted at zero while
// the calls were in flight: a second reservation was granted over the
// limit, and each settle then left the reserved total negative, which
// granted later reservations past the limit for the rest of the window.
func TestEvictedLedgerHashStillCountsReservationsInFlight(t *testing.T) {
	c := testRedis(t)
	key := testPrefix(t, c) + ":budget:p:team"
	s := redis.NewBudgetStore(c)
	ctx := context.Background()
	w := window()
	base := "{" + key + ":" + w.ID() + "}"
	lim := budget.Amount{USDMicros: 1000, Tokens: 1000}
	res := func(id string, usd int64) (budget.Hold, error) {
		return s.Reserve(ctx, budget.Reservation{Key: key, ID: id, Need: budget.Amount{USDMicros: usd, Tokens: 10},
			Limit: lim, Window: w, Now: time.Now(), TTL: time.Minute})
	}
	a, err := res("a", 600)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Del(ctx, base+":l").Err(); err != nil { // evicted
		t.Fatal(err)
	}
	if _, err := res("b", 600); err == nil {
		t.Fatal("a reservation of 600 was granted beside one of 600 in flight, limit 1000")
	}
	bal, err := a.Settle(ctx, budget.Amount{USDMicros: 600, Tokens: 10}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if bal.Reserved.USDMicros != 0 || bal.Reserved.Tokens != 0 || bal.InFlight != 0 || bal.Used.USDMicros != 600 {
		t.Fatalf("after the settle: %+v, want 600 used and nothing reserved", bal)
	}
	// 400 left: 500 must be refused.
	if _, err := res("c", 500); err == nil {
		t.Fatal("a reservation of 500 was granted with 600 of 1000 spent")
	}
	// The set of reservations evicted instead: once its call settled, a
	// reservation no longer holds the budget.
	d, err := res("d", 300)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Del(ctx, base+":z").Err(); err != nil {
		t.Fatal(err)
	}
	if bal, err = d.Settle(ctx, budget.Amount{USDMicros: 100, Tokens: 10}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if bal.Reserved.USDMicros != 0 || bal.InFlight != 0 || bal.Used.USDMicros != 700 {
		t.Fatalf("after the settle of a reservation whose set was evicted: %+v, want 700 used and nothing reserved", bal)
	}
}
