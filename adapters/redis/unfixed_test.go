package redis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/adapters/redis"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
)

// Two replicas whose clocks disagree about the day (one a day behind, or
// a few minutes around midnight) reserve against two ledgers of one daily
// budget, since the ledger's key is the day of the replica's clock: both
// are granted, and the team spends more than its daily limit. The Redis
// server's clock (which already decides reservation expiry) should decide
// the period.
func TestReplicaClocksSkewedAcrossMidnightShareOneDailyLedger(t *testing.T) {
	t.Skip("unfixed: a period ledger's key is the day of the replica's clock, not of Redis's")
	c := testRedis(t)
	key := testPrefix(t, c) + ":budget:p:team"
	s := redis.NewBudgetStore(c)
	ctx := context.Background()
	lim := budget.Amount{USDMicros: 1000}
	need := budget.Amount{USDMicros: 600}
	now := time.Now()
	behind := now.Add(-24 * time.Hour)
	if _, err := s.Reserve(ctx, budget.Reservation{Key: key, ID: "a", Need: need, Limit: lim, TTL: time.Minute,
		Now: now, Window: budget.WindowFor(budget.PeriodDaily, 0, now)}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Reserve(ctx, budget.Reservation{Key: key, ID: "b", Need: need, Limit: lim, TTL: time.Minute,
		Now: behind, Window: budget.WindowFor(budget.PeriodDaily, 0, behind)})
	var e *budget.ExceededError
	if !errors.As(err, &e) {
		t.Fatalf("the replica a day behind reserved $600µ more of a $1000µ daily budget already holding $600µ: %v", err)
	}
}
