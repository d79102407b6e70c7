package observe

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/tokenwise/tokenwise/policies"
)

// ForecastOptions say how often the replayed traffic happens. At most one
// of RunsPerDay and CallsPerDay is set; with neither, the rate is the
// trace's own, from the time its first and last records were written, when
// they are at least MinForecastSpan apart.
type ForecastOptions struct {
	// RunsPerDay projects the mean cost of a run of the trace (calls
	// outside runs left out; a run whose calls all failed when recorded
	// counts, at its cost) at this many runs a day.
	RunsPerDay float64
	// CallsPerDay projects the mean cost of a replayed call at this many
	// calls a day.
	CallsPerDay float64
}

// MinForecastSpan is the shortest trace whose own rate Forecast projects,
// an hour: a shorter one says too little of a day's traffic.
const MinForecastSpan = time.Hour

// ForecastDays is the length of the month a forecast projects, and of a
// monthly team budget's period: 30 days.
const ForecastDays = 30

// ErrNoRate is returned by ForecastReplay when no rate was given and the
// trace is too short to take its own.
var ErrNoRate = errors.New("tokenwise/observe: no rate to forecast at")

// Forecast projects what a replayed trace's traffic costs over a day, a
// month and the policy's team budget period, under the policy and as
// recorded. Its amounts are projections (floating point), not bills.
type Forecast struct {
	// Unit is "run" or "call": what PerDay counts.
	Unit string
	// Units is the number of runs or calls the means are taken over.
	Units int
	// PerDay is the number of units a day projected.
	PerDay float64
	// Span is the time between the trace's first and last records when
	// the rate is the trace's own (zero when a rate was given).
	Span time.Duration
	// PerUnit and RecordedPerUnit are the mean cost of a unit under the
	// policy and as recorded, in dollars.
	PerUnit, RecordedPerUnit float64
	// Day and RecordedDay are the projected cost of a day, in dollars;
	// DayTokens the tokens of a day under the policy.
	Day, RecordedDay float64
	DayTokens        float64
	// Team is the projection over the policy's team budget period, nil
	// without a team budget.
	Team *TeamForecast
}

// Month is the projected cost of ForecastDays days under the policy.
func (f *Forecast) Month() float64 { return f.Day * ForecastDays }

// RecordedMonth is the projected cost of ForecastDays days as recorded.
func (f *Forecast) RecordedMonth() float64 { return f.RecordedDay * ForecastDays }

// TeamForecast is a forecast over one period of the team budget.
type TeamForecast struct {
	Period policies.Period
	// Days is the period's length in days (a monthly period: ForecastDays).
	Days float64
	// MaxUSD and MaxTokens are the budget's limits (zero: none).
	MaxUSD    policies.USD
	MaxTokens int64
	// Spend and Tokens are the projected spend and tokens of one period.
	Spend, Tokens float64
	// Fraction is the share of the tighter limit the period's traffic
	// takes; above 1 the budget runs out.
	Fraction float64
	// RunsOutAfter is when, counted from the period's start, the budget
	// runs out at this rate, to the minute (exact under a minute; zero
	// only when it lasts the period). Later calls meet OnExceed.
	RunsOutAfter time.Duration
	OnExceed     policies.OnExceed
	DowngradeTo  string
}

// ForecastReplay projects the replay res of recs under p at the rate o
// gives. When p sets a team budget, the calls are priced by a replay of
// recs under p without it (made here, without res's build options): the
// trace's calls together may exceed it, and the replay then refuses or
// downgrades the later ones as one period's traffic would be, which says
// nothing of a call's cost at another rate; the period's projection
// (Team) applies the budget instead. It returns ErrNoRate (wrapped, with the trace's span) when o
// gives no rate and the trace spans less than MinForecastSpan, and an error
// when the rate is negative or both rates are set, or RunsPerDay is set
// for a trace without runs.
func ForecastReplay(p *policies.Policy, recs []Record, res *ReplayResult, o ForecastOptions) (*Forecast, error) {
	if o.RunsPerDay < 0 || o.CallsPerDay < 0 || math.IsNaN(o.RunsPerDay) || math.IsNaN(o.CallsPerDay) ||
		math.IsInf(o.RunsPerDay, 0) || math.IsInf(o.CallsPerDay, 0) {
		return nil, errors.New("tokenwise/observe: a forecast's rate is a finite number a day, not negative")
	}
	if o.RunsPerDay > 0 && o.CallsPerDay > 0 {
		return nil, errors.New("tokenwise/observe: forecast at runs a day or calls a day, not both")
	}
	if res.Calls == 0 {
		return nil, errors.New("tokenwise/observe: no calls to forecast from")
	}
	if tb := p.Budget.Team; tb.MaxUSD > 0 || tb.MaxTokens > 0 {
		free := *p
		free.Budget.Team = policies.TeamBudget{}
		r, err := Replay(context.Background(), &free, recs, ReplayOptions{})
		if err != nil {
			return nil, err
		}
		res = r
	}
	f := &Forecast{}
	switch {
	case o.RunsPerDay > 0:
		if traceRuns(recs) == 0 {
			return nil, errors.New("tokenwise/observe: the trace has no runs (no run ids): forecast at calls a day")
		}
		var cost, tokens int64
		for _, r := range res.Runs {
			t := r.Totals()
			cost += t.CostPico
			tokens += t.Usage.Total()
		}
		var recorded int64
		for i := range recs {
			if recs[i].Run != "" {
				recorded += recs[i].cost()
			}
		}
		f.Unit, f.Units, f.PerDay = "run", traceRuns(recs), o.RunsPerDay
		f.setRate(cost, recorded, tokens)
	case o.CallsPerDay > 0:
		f.Unit, f.Units, f.PerDay = "call", res.Calls, o.CallsPerDay
		f.setRate(res.CostPico, res.RecordedCost, res.Usage.Total())
	default:
		first, last := traceSpan(recs)
		span := last.Sub(first)
		if span < MinForecastSpan {
			return nil, fmt.Errorf("%w: the trace spans %s, less than an hour", ErrNoRate, span.Round(time.Second))
		}
		f.Span = span
		f.Unit, f.Units = "call", res.Calls
		if len(res.Runs) > 0 && allInRuns(recs) {
			f.Unit, f.Units = "run", traceRuns(recs)
		}
		f.PerDay = float64(f.Units) * float64(24*time.Hour) / float64(span)
		f.setRate(res.CostPico, res.RecordedCost, res.Usage.Total())
	}
	f.Team = teamForecast(p, f)
	return f, nil
}

// setRate sets the means and the day's projection from the units' total
// cost under the policy and as recorded, in pico-dollars, and tokens.
func (f *Forecast) setRate(costPico, recordedPico, tokens int64) {
	n := float64(f.Units)
	f.PerUnit = float64(costPico) / 1e12 / n
	f.RecordedPerUnit = float64(recordedPico) / 1e12 / n
	f.Day = f.PerUnit * f.PerDay
	f.RecordedDay = f.RecordedPerUnit * f.PerDay
	f.DayTokens = float64(tokens) / n * f.PerDay
}

func teamForecast(p *policies.Policy, f *Forecast) *TeamForecast {
	tb := p.Budget.Team
	if tb.MaxUSD <= 0 && tb.MaxTokens <= 0 {
		return nil
	}
	t := &TeamForecast{Period: tb.Period, MaxUSD: tb.MaxUSD, MaxTokens: tb.MaxTokens, OnExceed: p.Budget.OnExceed, DowngradeTo: p.Budget.DowngradeTo}
	switch tb.Period {
	case policies.PeriodDaily:
		t.Days = 1
	case policies.PeriodRolling:
		t.Days = time.Duration(tb.Window).Hours() / 24
	default:
		t.Days = ForecastDays
	}
	t.Spend, t.Tokens = f.Day*t.Days, f.DayTokens*t.Days
	if tb.MaxUSD > 0 {
		t.Fraction = t.Spend / tb.MaxUSD.Float()
	}
	if tb.MaxTokens > 0 {
		t.Fraction = max(t.Fraction, t.Tokens/float64(tb.MaxTokens))
	}
	if t.Fraction > 1 {
		// To the minute; under a minute exact, never zero (which reads
		// as a budget that lasts).
		t.RunsOutAfter = max(time.Duration(t.Days/t.Fraction*float64(24*time.Hour)), 1)
		if t.RunsOutAfter >= time.Minute {
			t.RunsOutAfter = t.RunsOutAfter.Round(time.Minute)
		}
	}
	return t
}

// traceSpan returns the times of the earliest and latest records that
// carry one.
func traceSpan(recs []Record) (first, last time.Time) {
	for i := range recs {
		t := recs[i].Time
		if t.IsZero() {
			continue
		}
		if first.IsZero() || t.Before(first) {
			first = t
		}
		if t.After(last) {
			last = t
		}
	}
	return first, last
}

// traceRuns returns the number of runs of recs: its distinct run ids,
// those of runs whose calls all failed when recorded (not replayed, so
// not in a ReplayResult's Runs) included.
func traceRuns(recs []Record) int {
	ids := map[string]struct{}{}
	for i := range recs {
		if recs[i].Run != "" {
			ids[recs[i].Run] = struct{}{}
		}
	}
	return len(ids)
}

func allInRuns(recs []Record) bool {
	for i := range recs {
		if recs[i].Run == "" {
			return false
		}
	}
	return true
}
