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
