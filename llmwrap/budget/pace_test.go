package budget_test

import (
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap/budget"
)

// TestPaceProjectsAFixedWindow: 10 days into a 31-day month with $0.63
// spent of $1, the month ends at $1.953 at that pace, and the $0.37 left
// (less $0.07 held by calls in flight: $0.30) is spent 0.30 / 0.63 × 10
// days = 4 d 18 h 17 min 8 s later; tokens alike, the earliest unit wins;
// a budget that lasts has no run-out time; one already spent runs out now.
func TestPaceProjectsAFixedWindow(t *testing.T) {
	t.Parallel()
	march := budget.WindowFor(budget.PeriodMonthly, 0, time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC))
	at := time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC)
	r := budget.Remaining{Window: march, At: at, Balance: budget.Balance{
		Limit:    budget.Amount{USDMicros: 1_000_000},
		Used:     budget.Amount{USDMicros: 630_000, Tokens: 3300},
		Reserved: budget.Amount{USDMicros: 70_000},
	}}
	p, ok := r.Pace()
	if !ok || p.Elapsed != 240*time.Hour || p.Projected.USDMicros != 1_953_000 || p.Projected.Tokens != 10230 {
		t.Fatalf("pace %+v, %v: want 240 h elapsed, $1.953 and 10,230 tokens projected", p, ok)
	}
	if want := time.Date(2026, 3, 15, 18, 17, 8, 0, time.UTC); !p.RunsOutAt.Equal(want) {
		t.Errorf("runs out at %s, want %s", p.RunsOutAt, want)
	}
	// A token limit reached sooner: 3,300 of 5,000 tokens, 1,700 left at
	// 330 a day, 5 d 3 h 38 min 10 s; the dollars' 4 d 18 h come first.
	r.Limit.Tokens = 5000
	if p, _ := r.Pace(); !p.RunsOutAt.Equal(time.Date(2026, 3, 15, 18, 17, 8, 0, time.UTC)) {
		t.Errorf("with a token limit: runs out at %s, want the dollars' time", p.RunsOutAt)
	}
	r.Limit.Tokens = 4000 // 700 left: 2 d 2 h 54 min 32 s
	if p, _ := r.Pace(); !p.RunsOutAt.Equal(time.Date(2026, 3, 13, 2, 54, 32, 0, time.UTC)) {
		t.Errorf("a tighter token limit: runs out at %s, want 2026-03-13 02:54:32", p.RunsOutAt)
	}
	r.Limit = budget.Amount{USDMicros: 5_000_000}
	if p, _ := r.Pace(); !p.RunsOutAt.IsZero() {
		t.Errorf("$5 lasts the month at $1.953: runs out at %s", p.RunsOutAt)
	}
	r.Limit = budget.Amount{USDMicros: 600_000}
	if p, _ := r.Pace(); !p.RunsOutAt.Equal(at) {
		t.Errorf("nothing left: runs out at %s, want now (%s)", p.RunsOutAt, at)
	}
	r.Limit = budget.Amount{}
	if p, _ := r.Pace(); !p.RunsOutAt.IsZero() || p.Projected.USDMicros != 1_953_000 {
		t.Errorf("no limit: %+v: want the projection and no run-out time", p)
	}
}

// TestPaceWaitsForAnHourOfAFixedWindow: the first hour of a day is not
// projected, nor is a rolling window (its spend is a window's worth).
func TestPaceWaitsForAnHourOfAFixedWindow(t *testing.T) {
	t.Parallel()
	day := budget.WindowFor(budget.PeriodDaily, 0, time.Date(2026, 3, 5, 0, 30, 0, 0, time.UTC))
	r := budget.Remaining{Window: day, At: time.Date(2026, 3, 5, 0, 59, 0, 0, time.UTC), Balance: budget.Balance{Used: budget.Amount{USDMicros: 10}}}
	if p, ok := r.Pace(); ok {
		t.Errorf("59 minutes into a day: %+v, want no pace", p)
	}
	r.At = time.Date(2026, 3, 5, 6, 0, 0, 0, time.UTC)
	if p, ok := r.Pace(); !ok || p.Projected.USDMicros != 40 {
		t.Errorf("6 hours into a day with 10 µ$ spent: %+v, %v: want 40 µ$", p, ok)
	}
	r.Window = budget.WindowFor(budget.PeriodRolling, 24*time.Hour, r.At)
	if p, ok := r.Pace(); ok {
		t.Errorf("a rolling window: %+v, want no pace", p)
	}
}
