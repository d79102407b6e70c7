package observe_test

import (
	"context"
	"errors"
	"math"
	"os"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/observe"
	"github.com/tokenwise/tokenwise/policies"
)

// replayExample replays the example DevOps trace (two runs of five calls)
// under the policy src, its records' times set step apart.
func replayExample(t *testing.T, src string, step time.Duration) (*policies.Policy, []observe.Record, *observe.ReplayResult) {
	t.Helper()
	f, err := os.Open("../examples/traces/devops.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := observe.ReadTrace(f)
	if err != nil {
		t.Fatal(err)
	}
	if step > 0 {
		base := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		for i := range recs {
			recs[i].Time = base.Add(time.Duration(i) * step)
		}
	}
	p, err := policies.LoadBytes([]byte(src), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res, err := observe.Replay(context.Background(), p, recs, observe.ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Runs) != 2 || res.Calls != 10 || res.Failed != 0 || res.CostPico <= 0 || res.RecordedCost <= 0 {
		t.Fatalf("the example trace replays as %+v: want 2 runs of 10 calls, priced", res)
	}
	return p, recs, res
}

func near(got, want float64) bool { return math.Abs(got-want) <= 1e-9*math.Max(1, math.Abs(want)) }

// TestForecastProjectsTheMeanRun: at N runs a day a day costs N mean
// replayed runs, under the policy and as recorded; a month 30 days; and
// the team budget's period takes its share of the limit.
func TestForecastProjectsTheMeanRun(t *testing.T) {
	t.Parallel()
	p, recs, res := replayExample(t, "version: 1\nbudget: {team: {period: monthly, max_usd: 500}}\n", 0)
	f, err := observe.ForecastReplay(p, recs, res, observe.ForecastOptions{RunsPerDay: 1000})
	if err != nil {
		t.Fatal(err)
	}
	perRun := float64(res.CostPico) / 1e12 / 2
	recPerRun := float64(res.RecordedCost) / 1e12 / 2
	if f.Unit != "run" || f.Units != 2 || !near(f.PerUnit, perRun) || !near(f.RecordedPerUnit, recPerRun) {
		t.Errorf("forecast %+v: want the mean of 2 runs, %g under the policy, %g recorded", f, perRun, recPerRun)
	}
	if !near(f.Day, 1000*perRun) || !near(f.RecordedDay, 1000*recPerRun) || !near(f.Month(), 30*1000*perRun) || !near(f.RecordedMonth(), 30*1000*recPerRun) {
		t.Errorf("day %g (recorded %g), month %g (recorded %g): want %g (%g), %g (%g)",
			f.Day, f.RecordedDay, f.Month(), f.RecordedMonth(), 1000*perRun, 1000*recPerRun, 30*1000*perRun, 30*1000*recPerRun)
	}
	if !near(f.DayTokens, 1000*float64(res.Usage.Total())/2) {
		t.Errorf("tokens a day %g, want %g", f.DayTokens, 1000*float64(res.Usage.Total())/2)
	}
	tf := f.Team
	if tf == nil || tf.Days != 30 || !near(tf.Spend, f.Month()) || !near(tf.Fraction, f.Month()/500) || tf.RunsOutAfter != 0 {
		t.Fatalf("team forecast %+v: want 30 days taking %g of $500 and lasting", tf, f.Month()/500)
	}
}

// TestForecastSaysWhenTheTeamBudgetRunsOut: traffic above a daily limit
// runs it out at the limit's share of the day, whichever limit is tighter.
func TestForecastSaysWhenTheTeamBudgetRunsOut(t *testing.T) {
	t.Parallel()
	p, recs, res := replayExample(t, "version: 1\nbudget: {team: {period: daily, max_usd: 1, max_tokens: 2000000}, on_exceed: reject}\n", 0)
	f, err := observe.ForecastReplay(p, recs, res, observe.ForecastOptions{CallsPerDay: 10000})
	if err != nil {
		t.Fatal(err)
	}
	perCall := float64(res.CostPico) / 1e12 / 10
	if f.Unit != "call" || f.Units != 10 || !near(f.Day, 10000*perCall) {
		t.Fatalf("forecast %+v: want 10,000 calls at %g", f, perCall)
	}
	tokens := 10000 * float64(res.Usage.Total()) / 10
	want := math.Max(f.Day/1, tokens/2000000)
	tf := f.Team
	if tf == nil || tf.Days != 1 || !near(tf.Fraction, want) || want <= 1 {
		t.Fatalf("team forecast %+v: want a day taking %g of the tighter limit (> 1)", tf, want)
	}
	if d := time.Duration(24 * float64(time.Hour) / want).Round(time.Minute); tf.RunsOutAfter != d || tf.OnExceed != policies.OnExceedReject {
		t.Errorf("runs out after %s (%q), want %s (reject)", tf.RunsOutAfter, tf.OnExceed, d)
	}
}

// TestForecastTakesTheTracesOwnRate: without a rate, a trace of at least
// an hour is projected at its own: 2 runs in 3 hours are 16 runs a day.
func TestForecastTakesTheTracesOwnRate(t *testing.T) {
	t.Parallel()
	p, recs, res := replayExample(t, "version: 1\nbudget: {team: {period: rolling, window: 12h, max_usd: 1000}}\n", 20*time.Minute)
	f, err := observe.ForecastReplay(p, recs, res, observe.ForecastOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if f.Span != 3*time.Hour || f.Unit != "run" || !near(f.PerDay, 16) || !near(f.Day, float64(res.CostPico)/1e12*8) {
		t.Errorf("forecast %+v: want the trace's 3 hours, 16 runs a day costing %g", f, float64(res.CostPico)/1e12*8)
	}
	if tf := f.Team; tf == nil || tf.Days != 0.5 || !near(tf.Spend, f.Day/2) {
		t.Errorf("team forecast %+v: want half a day's spend over the 12-hour window", tf)
	}
}

// TestForecastRefusesWhatItCannotProject: a trace shorter than an hour
// without a rate is ErrNoRate; both rates, a negative one, and runs a day
// for a trace without runs are errors.
func TestForecastRefusesWhatItCannotProject(t *testing.T) {
	t.Parallel()
	p, recs, res := replayExample(t, "version: 1\n", 5*time.Minute)
	if _, err := observe.ForecastReplay(p, recs, res, observe.ForecastOptions{}); !errors.Is(err, observe.ErrNoRate) {
		t.Errorf("45 minutes of trace without a rate: %v, want ErrNoRate", err)
	}
	for _, o := range []observe.ForecastOptions{{RunsPerDay: 1, CallsPerDay: 1}, {RunsPerDay: -1}, {CallsPerDay: math.NaN()}, {CallsPerDay: math.Inf(1)}} {
		if f, err := observe.ForecastReplay(p, recs, res, o); err == nil || errors.Is(err, observe.ErrNoRate) {
			t.Errorf("%+v: %+v, %v: want an error", o, f, err)
		}
	}
	for i := range recs {
		recs[i].Run = ""
	}
	runless, err := observe.Replay(context.Background(), p, recs, observe.ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if f, err := observe.ForecastReplay(p, recs, runless, observe.ForecastOptions{RunsPerDay: 10}); err == nil {
		t.Errorf("runs a day without runs: %+v, want an error", f)
	}
	if f, err := observe.ForecastReplay(p, recs, runless, observe.ForecastOptions{CallsPerDay: 10}); err != nil || f.Unit != "call" || f.Team != nil {
		t.Errorf("calls a day without runs: %+v, %v: want a forecast per call without a team budget", f, err)
	}
}

// TestForecastIsNotCappedByTheTeamBudgetOfTheReplay: the replay of a trace
// whose calls together exceed the policy's team budget refuses (or
// downgrades) its later calls, as one period's traffic would be; the
// forecast projects the traffic at another rate, so its cost of a call is
// that of the calls as the policy prices them, not the replay's capped
// mean. The example trace costs about $0.0063 under a policy without a
// team budget; under a daily $0.002 it is the same per call.
func TestForecastIsNotCappedByTheTeamBudgetOfTheReplay(t *testing.T) {
	t.Parallel()
	_, _, free := replayExample(t, "version: 1\n", 0)
	f, err := os.Open("../examples/traces/devops.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := observe.ReadTrace(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, onExceed := range []string{"reject", "downgrade, downgrade_to: gpt-4o-mini"} {
		p, err := policies.LoadBytes([]byte("version: 1\nbudget: {team: {period: daily, max_usd: 0.002}, on_exceed: "+onExceed+"}\n"), "p.yaml")
		if err != nil {
			t.Fatal(err)
		}
		res, err := observe.Replay(context.Background(), p, recs, observe.ReplayOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.CostPico >= free.CostPico {
			t.Fatalf("%s: the replay costs %d, the free one %d: want the team budget to cut it", onExceed, res.CostPico, free.CostPico)
		}
		fc, err := observe.ForecastReplay(p, recs, res, observe.ForecastOptions{CallsPerDay: 100})
		if err != nil {
			t.Fatal(err)
		}
		perCall := float64(free.CostPico) / 1e12 / 10
		if !near(fc.PerUnit, perCall) || !near(fc.Day, 100*perCall) || !near(fc.DayTokens, 100*float64(free.Usage.Total())/10) {
			t.Errorf("%s: a call %g, a day %g (%g tokens): want %g, %g, %g tokens (the calls' cost, not the replay's capped one)",
				onExceed, fc.PerUnit, fc.Day, fc.DayTokens, perCall, 100*perCall, 100*float64(free.Usage.Total())/10)
		}
		if tf := fc.Team; tf == nil || !near(tf.Fraction, 100*perCall/0.002) || tf.RunsOutAfter == 0 {
			t.Errorf("%s: team forecast %+v: want %g of the limit, running out", onExceed, tf, 100*perCall/0.002)
		}
	}
}

// TestForecastCountsRunsWhoseCallsAllFailed: a run whose only call failed
// when it was recorded (no response: not replayed) is still one of the
// trace's runs; the mean run is taken over the three runs, not the two
// replayed ones (the numerator already counted its recorded cost).
func TestForecastCountsRunsWhoseCallsAllFailed(t *testing.T) {
	t.Parallel()
	p, err := policies.LoadBytes([]byte("version: 1\n"), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, recs, _ := replayExample(t, "version: 1\n", 0)
	failed := recs[0]
	failed.Run, failed.Response, failed.Error, failed.CostPico = "c/failed", nil, "429 rate limited", 0
	recs = append(recs, failed)
	res, err := observe.Replay(context.Background(), p, recs, observe.ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := observe.ForecastReplay(p, recs, res, observe.ForecastOptions{RunsPerDay: 300})
	if err != nil {
		t.Fatal(err)
	}
	perRun := float64(res.CostPico) / 1e12 / 3
	if f.Units != 3 || !near(f.PerUnit, perRun) || !near(f.Day, 300*perRun) || !near(f.RecordedPerUnit, float64(res.RecordedCost)/1e12/3) {
		t.Errorf("forecast %+v: want the mean of 3 runs, %g a run", f, perRun)
	}
	// The trace's own rate: 3 runs in 3 hours and a third are 21.6 a day.
	base := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for i := range recs {
		recs[i].Time = base.Add(time.Duration(i) * 20 * time.Minute)
	}
	f, err = observe.ForecastReplay(p, recs, res, observe.ForecastOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if f.Unit != "run" || f.Units != 3 || !near(f.PerDay, 3*24/(200.0/60)) || !near(f.Day, float64(res.CostPico)/1e12*24/(200.0/60)) {
		t.Errorf("forecast at the trace's rate %+v: want 3 runs in 3h20m, %g a day", f, 3*24/(200.0/60))
	}
}

// TestForecastOfTrafficFarAboveTheBudgetRunsOut: traffic thousands of times
// a daily limit runs it out within a minute of the day's start; the
// forecast still says it runs out (it rounded that time to zero minutes,
// which reads as a budget that lasts the period).
func TestForecastOfTrafficFarAboveTheBudgetRunsOut(t *testing.T) {
	t.Parallel()
	_, recs, res := replayExample(t, "version: 1\n", 0)
	p, err := policies.LoadBytes([]byte("version: 1\nbudget: {team: {period: daily, max_usd: 0.001}}\n"), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f, err := observe.ForecastReplay(p, recs, res, observe.ForecastOptions{CallsPerDay: 10_000_000})
	if err != nil {
		t.Fatal(err)
	}
	tf := f.Team
	if tf == nil || tf.Fraction <= 2880 {
		t.Fatalf("team forecast %+v: want more than 2,880 times the limit", tf)
	}
	want := time.Duration(24 * float64(time.Hour) / tf.Fraction)
	if tf.RunsOutAfter <= 0 || tf.RunsOutAfter > time.Minute || (tf.RunsOutAfter-want).Abs() > time.Second {
		t.Errorf("runs out after %s, want about %s (not zero: it runs out)", tf.RunsOutAfter, want)
	}
}
