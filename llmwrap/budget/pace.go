package budget

import (
	"math"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

// MinPaceElapsed is how much of a window must have passed before Pace
// projects it: an hour. A shorter start says too little of the period's
// traffic.
const MinPaceElapsed = time.Hour

// Pace is a fixed window's spend projected to the window's end at the rate
// of its elapsed part: a forecast, not a bill.
type Pace struct {
	// Elapsed is the part of the window the rate is taken over.
	Elapsed time.Duration
	// Projected is the spend at the window's end at that rate, with the
	// reservations of the calls in flight counted as spent (their worst
	// case, as RunsOutAt and the budget's admission count them): Used ×
	// window ÷ Elapsed + Reserved, in each unit (rounded to a micro-dollar
	// and a token). The window runs out before its end (RunsOutAt set)
	// exactly when Projected is over the limit.
	Projected Amount
	// RunsOutAt is when, at that rate, the spend reaches the limit of a
	// unit that has one (the earliest of the units): the remaining amount
	// (limit less spend and reservations in flight) spent at the rate. Zero when the
	// budget lasts the window at that rate; At when nothing remains.
	RunsOutAt time.Time
}

// Pace projects r's window to its end at the rate of its elapsed part. It
// reports false for a rolling window (its spend is already a window's
// worth: Used is the projection) and when less than MinPaceElapsed of the
// window has passed.
func (r Remaining) Pace() (Pace, bool) {
	w := r.Window
	if w.Rolling > 0 || w.Start.IsZero() || !w.End.After(w.Start) {
		return Pace{}, false
	}
	elapsed := r.At.Sub(w.Start)
	if elapsed < MinPaceElapsed {
		return Pace{}, false
	}
	length := w.End.Sub(w.Start)
	elapsed = min(elapsed, length)
	scale := float64(length) / float64(elapsed)
	p := Pace{Elapsed: elapsed}
	// The reservations in flight count as spent, as in RunsOutAt (and
	// the budget's admission): the two forecasts agree.
	held := r.Reserved.Ceil()
	p.Projected.USDMicros = middleware.SatAdd(projectUnit(r.Used.USDMicros, scale), max(held.USDMicros, 0))
	p.Projected.Tokens = middleware.SatAdd(projectUnit(r.Used.Tokens, scale), max(held.Tokens, 0))
	rem := r.Remaining()
	for _, u := range [...]struct{ limit, used, remaining int64 }{
		{r.Limit.USDMicros, r.Used.USDMicros, rem.USDMicros},
		{r.Limit.Tokens, r.Used.Tokens, rem.Tokens},
	} {
		if u.limit <= 0 {
			continue
		}
		var at time.Time
		switch {
		case u.remaining <= 0:
			at = r.At
		case u.used <= 0:
			continue
		default:
			// remaining ÷ (used ÷ elapsed), from now.
			d := float64(u.remaining) / float64(u.used) * float64(elapsed)
			if d >= float64(w.End.Sub(r.At)) {
				continue
			}
			at = r.At.Add(time.Duration(d)).Truncate(time.Second)
		}
		if p.RunsOutAt.IsZero() || at.Before(p.RunsOutAt) {
			p.RunsOutAt = at
		}
	}
	return p, true
}

// projectUnit returns used × scale, rounded, saturating at the largest
// int64.
func projectUnit(used int64, scale float64) int64 {
	v := math.Round(float64(used) * scale)
	if v >= math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}
