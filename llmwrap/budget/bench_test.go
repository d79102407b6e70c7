package budget_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap/budget"
)

func benchReserveSettle(b *testing.B, parallel, sameKey bool) {
	s := budget.NewMemoryStore()
	ctx := context.Background()
	now := time.Now()
	w := budget.WindowFor(budget.PeriodDaily, 0, now)
	need := budget.Amount{USDMicros: 100, Tokens: 10}
	lim := budget.Amount{USDMicros: 1 << 62, Tokens: 1 << 62}
	b.ReportAllocs()
	if !parallel {
		r := budget.Reservation{Key: "tokenwise:budget:p:team", Need: need, Limit: lim, Window: w, Now: now}
		for b.Loop() {
			h, err := s.Reserve(ctx, r)
			if err != nil {
				b.Fatal(err)
			}
			h.Settle(ctx, need, now)
		}
		return
	}
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		key := "tokenwise:budget:p:team"
		if !sameKey {
			key += strconv.FormatInt(n.Add(1), 10)
		}
		r := budget.Reservation{Key: key, Need: need, Limit: lim, Window: w, Now: now}
		for pb.Next() {
			h, err := s.Reserve(ctx, r)
			if err != nil {
				b.Fatal(err)
			}
			h.Settle(ctx, need, now)
		}
	})
}

// BenchmarkMemoryReserveSettle is one reserve+settle pair, uncontended.
func BenchmarkMemoryReserveSettle(b *testing.B) { benchReserveSettle(b, false, false) }

// BenchmarkMemoryReserveSettleParallelTeams: one team per goroutine.
func BenchmarkMemoryReserveSettleParallelTeams(b *testing.B) { benchReserveSettle(b, true, false) }

// BenchmarkMemoryReserveSettleParallelSameTeam: every goroutine on one ledger.
func BenchmarkMemoryReserveSettleParallelSameTeam(b *testing.B) { benchReserveSettle(b, true, true) }
