package budget_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// TestPaceProjectsAFixedWindow: 10 days into a 31-day month with $0.63
// spent of $1 and $0.07 held by calls in flight, the month ends at $1.953
// at that pace and the $0.07 held, $2.023, and the $0.37 left
// (less the $0.07 held: $0.30) is spent 0.30 / 0.63 × 10
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
	if !ok || p.Elapsed != 240*time.Hour || p.Projected.USDMicros != 2_023_000 || p.Projected.Tokens != 10230 {
		t.Fatalf("pace %+v, %v: want 240 h elapsed, $2.023 and 10,230 tokens projected", p, ok)
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
		t.Errorf("$5 lasts the month at $2.023: runs out at %s", p.RunsOutAt)
	}
	r.Limit = budget.Amount{USDMicros: 600_000}
	if p, _ := r.Pace(); !p.RunsOutAt.Equal(at) {
		t.Errorf("nothing left: runs out at %s, want now (%s)", p.RunsOutAt, at)
	}
	r.Limit = budget.Amount{}
	if p, _ := r.Pace(); !p.RunsOutAt.IsZero() || p.Projected.USDMicros != 2_023_000 {
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

// TestPaceWarningFiresOncePerPeriod: with soft limits set, a team whose
// spend, at the pace of the day so far, would reach its limit before the
// day ends gets one middleware.BudgetPace (per day and unit) saying when: 6
// hours into the day, 4 calls of 10 allowed are on pace for 16, and the 6
// left last 9 more hours, to 15:00. Not before a tenth of the day has
// passed (3 calls 2 hours in, on pace for 36), nor without warn_at.
func TestPaceWarningFiresOncePerPeriod(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		per := reqTokens("gpt-4o") + 100
		p := teamPolicy(policies.TeamBudget{Period: policies.PeriodDaily, MaxTokens: 10 * per})
		p.Budget.WarnAt = []float64{0.9}
		rec := &recorder{}
		_, h := chain(t, p, echo(100))
		ctx := middleware.WithObserver(context.Background(), rec)
		call := func(n int) {
			t.Helper()
			for range n {
				if _, err := h.Handle(ctx, request("gpt-4o")); err != nil {
					t.Fatal(err)
				}
			}
		}
		paces := func() []middleware.BudgetPace {
			var out []middleware.BudgetPace
			for _, e := range rec.Events() {
				if x, ok := e.(middleware.BudgetPace); ok {
					out = append(out, x)
				}
			}
			return out
		}
		day := time.Now().UTC().Truncate(24 * time.Hour)
		time.Sleep(2 * time.Hour) // under a tenth of the day: on pace for 36, no warning yet
		call(3)
		if got := paces(); len(got) != 0 {
			t.Fatalf("2 hours into the day: %+v, want no pace warning yet", got)
		}
		time.Sleep(4 * time.Hour) // 6 h: 3 calls are on pace for 12 of 10
		call(1)
		got := paces()
		if len(got) != 1 {
			t.Fatalf("6 hours into the day after 4 calls: %d pace warnings, want 1", len(got))
		}
		// 4 of 10 used at 6 h: the 6 left last 9 more hours, to 15:00.
		w := got[0]
		if w.Scope != "team:devops" || w.Unit != budget.UnitTokens || w.Limit != 10*per || w.Used != 4*per || w.Projected != 16*per ||
			!w.RunsOutAt.Equal(day.Add(15*time.Hour)) || !w.WindowEnd.Equal(day.Add(24*time.Hour)) {
			t.Errorf("pace warning %+v: want 4 of 10 used, 16 projected, out at 15:00, the day ending at midnight", w)
		}
		call(2)
		if n := len(paces()); n != 1 {
			t.Errorf("more calls the same day: %d pace warnings, want still 1", n)
		}
		time.Sleep(24 * time.Hour) // the next day, 6 h in: again
		call(4)
		if n := len(paces()); n != 2 {
			t.Errorf("the next day: %d pace warnings, want 2", n)
		}

		// Without warn_at: none.
		p.Budget.WarnAt = nil
		rec2 := &recorder{}
		_, h2 := chain(t, p, echo(100))
		ctx2 := middleware.WithObserver(context.Background(), rec2)
		for range 5 {
			if _, err := h2.Handle(ctx2, request("gpt-4o")); err != nil {
				t.Fatal(err)
			}
		}
		for _, e := range rec2.Events() {
			if _, ok := e.(middleware.BudgetPace); ok {
				t.Fatalf("a pace warning without warn_at: %+v", e)
			}
		}
	})
}

// TestTeamWarningsCountTheLegacyLedger: a team whose policy is not named
// after it has spend of the period in its legacy ledger
// ("<prefix>:budget:<policy>:<team>", written by an earlier version),
// which its limit counts: the soft-limit and pace warnings count it too.
// 5 of 10 calls' worth there and 1 call at 6 hours into the day is 6 of
// 10 used, on pace for 24: a pace warning and the 0.5 soft limit's fire,
// with 6 used. (Before, they read the new ledger alone: 1 of 10, on pace
// for 4, and neither fired.)
func TestTeamWarningsCountTheLegacyLedger(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		per := reqTokens("gpt-4o") + 100
		p := teamPolicy(policies.TeamBudget{Period: policies.PeriodDaily, MaxTokens: 10 * per})
		p.Name = "prop"
		p.Budget.WarnAt = []float64{0.5}
		store := budget.NewMemoryStore()
		now := time.Now()
		w := budget.WindowFor(budget.PeriodDaily, 0, now)
		hold, err := store.Reserve(context.Background(), budget.Reservation{Key: "tokenwise:budget:prop:devops", ID: "old-1",
			Need: budget.Amount{Tokens: 5 * per}, Window: w, Now: now, TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := hold.Settle(context.Background(), budget.Amount{Tokens: 5 * per}, now); err != nil {
			t.Fatal(err)
		}
		rec := &recorder{}
		_, h := chain(t, p, echo(100), budget.WithStore(store))
		ctx := middleware.WithTeam(middleware.WithObserver(context.Background(), rec), "devops")
		time.Sleep(6 * time.Hour)
		if _, err := h.Handle(ctx, request("gpt-4o")); err != nil {
			t.Fatal(err)
		}
		var paces []middleware.BudgetPace
		var warnings []middleware.BudgetWarning
		for _, e := range rec.Events() {
			switch x := e.(type) {
			case middleware.BudgetPace:
				paces = append(paces, x)
			case middleware.BudgetWarning:
				warnings = append(warnings, x)
			}
		}
		if len(paces) != 1 || paces[0].Used != 6*per || paces[0].Projected != 24*per {
			t.Errorf("pace warnings %+v; want one, of 6 calls' worth used (5 in the legacy ledger), 24 projected", paces)
		}
		if len(warnings) != 1 || warnings[0].Used != 6*per || warnings[0].Fraction != 0.5 {
			t.Errorf("soft-limit warnings %+v; want the 0.5 one, of 6 calls' worth used", warnings)
		}
	})
}

// TestPaceFiguresAgree: over random spend, reservations in flight, limits
// and elapsed parts of a month, the two forecasts of Pace agree — the
// budget runs out before the window ends (RunsOutAt set) exactly when
// the projected spend at its end is over the limit — because both count
// the reservations in flight, as the budget's admission does. (Before,
// RunsOutAt counted them and Projected did not: $0.20 spent 10 days
// into a month with $0.70 held was projected at $0.62 of a $1 limit, yet
// said to run out on day 14.)
func TestPaceFiguresAgree(t *testing.T) {
	t.Parallel()
	month := budget.WindowFor(budget.PeriodMonthly, 0, time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC))
	length := month.End.Sub(month.Start)
	r := rand.New(rand.NewPCG(7, 11))
	checked := 0
	for range 5000 {
		limit := 1 + r.Int64N(10_000_000)
		var used, reserved int64
		if r.IntN(8) > 0 {
			used = r.Int64N(2 * limit)
		}
		if r.IntN(2) == 0 {
			reserved = r.Int64N(limit)
		}
		elapsed := budget.MinPaceElapsed + time.Duration(r.Int64N(int64(length-budget.MinPaceElapsed)))
		rem := budget.Remaining{Window: month, At: month.Start.Add(elapsed), Balance: budget.Balance{
			Limit: budget.Amount{USDMicros: limit}, Used: budget.Amount{USDMicros: used}, Reserved: budget.Amount{USDMicros: reserved}}}
		p, ok := rem.Pace()
		if !ok {
			t.Fatalf("%+v: no pace", rem)
		}
		over := p.Projected.USDMicros - limit
		if over >= -1 && over <= 1 {
			continue // at the limit, within the projection's rounding
		}
		if runsOut := !p.RunsOutAt.IsZero(); runsOut != (over > 0) {
			t.Fatalf("$%d µ spent and %d µ reserved of %d µ after %s: projected %d µ, runs out at %v: the figures disagree",
				used, reserved, limit, elapsed, p.Projected.USDMicros, p.RunsOutAt)
		}
		checked++
	}
	if checked < 4000 {
		t.Errorf("only %d cases checked", checked)
	}
	// The example: $0.20 spent and $0.70 held 10 days into March, of $1.
	rem := budget.Remaining{Window: month, At: time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC), Balance: budget.Balance{
		Limit: budget.Amount{USDMicros: 1_000_000}, Used: budget.Amount{USDMicros: 200_000}, Reserved: budget.Amount{USDMicros: 700_000}}}
	if p, _ := rem.Pace(); p.Projected.USDMicros != 1_320_000 || !p.RunsOutAt.Equal(time.Date(2026, 3, 16, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("pace %+v: want $1.32 projected ($0.62 at the pace and $0.70 held), running out on March 16", p)
	}
}
