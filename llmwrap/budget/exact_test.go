package budget_test

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap/budget"
)

func TestAmountCarriesPicoDollars(t *testing.T) {
	for _, tt := range []struct {
		name      string
		got, want budget.Amount
	}{
		{"exact", budget.Exact(3, 2_250_000), budget.Amount{Tokens: 3, USDMicros: 2, SubMicroPico: 250_000}},
		{"exact whole", budget.Exact(0, 5_000_000), budget.Amount{USDMicros: 5}},
		{"exact negative", budget.Exact(0, -1), budget.Amount{USDMicros: -1, SubMicroPico: 999_999}},
		{"add carries", budget.Exact(0, 1_600_000).Add(budget.Exact(1, 700_000)), budget.Amount{Tokens: 1, USDMicros: 2, SubMicroPico: 300_000}},
		{"sub borrows", budget.Exact(0, 2_100_000).Sub(budget.Exact(0, 200_000)), budget.Amount{USDMicros: 1, SubMicroPico: 900_000}},
		{"ceil", budget.Exact(7, 2_000_001).Ceil(), budget.Amount{Tokens: 7, USDMicros: 3}},
		{"ceil whole", budget.Exact(0, 2_000_000).Ceil(), budget.Amount{USDMicros: 2}},
		{"settleable normalises", budget.Settleable(budget.Amount{USDMicros: 1, SubMicroPico: 2_500_000}), budget.Amount{USDMicros: 3, SubMicroPico: 500_000}},
		{"settleable negative", budget.Settleable(budget.Exact(-5, -1)), budget.Amount{}},
		{"settleable bound", budget.Settleable(budget.Amount{USDMicros: math.MaxInt64, SubMicroPico: 5}), budget.Amount{USDMicros: 1 << 50}},
		{"add saturates", budget.Amount{USDMicros: math.MaxInt64}.Add(budget.Amount{USDMicros: 5}), budget.Amount{USDMicros: math.MaxInt64}},
	} {
		if tt.got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, tt.got, tt.want)
		}
	}
}

// The MemoryStore's ledgers, fixed and rolling, hold the exact sum of
// their settlements' pico-dollar costs, rounded up once (see
// adapters/redis TestLedgerEqualsExactSumInBothStores for the same
// property against the Redis store); and the rounding never lets
// reservations overshoot a limit.
func TestMemoryLedgerIsExact(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)
	for _, w := range []budget.Window{budget.WindowFor(budget.PeriodDaily, 0, t0), {Rolling: time.Hour}, {}} {
		s := budget.NewMemoryStore()
		r := rand.New(rand.NewPCG(1, 2))
		var pico int64
		for i := range 2_000 {
			now := t0.Add(time.Duration(i) * time.Second)
			p := r.Int64N(3_000_000) // tiny calls: up to $3 µ
			if i%100 == 0 {
				p = r.Int64N(1_000_000_000_000) // up to $1
			}
			h, err := s.Reserve(ctx, budget.Reservation{Key: "k", Need: budget.Amount{USDMicros: 1}, Window: w, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			bal, err := h.Settle(ctx, budget.Exact(1, p), now)
			if err != nil {
				t.Fatal(err)
			}
			pico += p
			if want := (pico + 999_999) / 1_000_000; bal.Used.USDMicros != want || bal.Used.SubMicroPico != 0 || bal.Used.Tokens != int64(i+1) {
				t.Fatalf("%s, settlement %d: used %+v, want %d µ$ (%d pico) and %d tokens", w.ID(), i, bal.Used, want, pico, i+1)
			}
		}
	}

	// A limit of 3 µ$: two calls of 1.4 µ$ spent 2.8 µ$, which counts as
	// 3 µ$: a reservation of 1 µ$ more is refused.
	s := budget.NewMemoryStore()
	lim := budget.Amount{USDMicros: 3}
	for range 2 {
		h, err := s.Reserve(ctx, budget.Reservation{Key: "k", Need: budget.Amount{USDMicros: 1}, Limit: lim, Now: t0})
		if err != nil {
			t.Fatal(err)
		}
		_, _ = h.Settle(ctx, budget.Exact(0, 1_400_000), t0)
	}
	if _, err := s.Reserve(ctx, budget.Reservation{Key: "k", Need: budget.Amount{USDMicros: 1}, Limit: lim, Now: t0}); err == nil {
		t.Fatal("a reservation past the limit (2.8 µ$ spent, rounded up to 3) was admitted")
	}
}
