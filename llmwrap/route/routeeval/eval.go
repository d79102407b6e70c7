package routeeval

import (
	"errors"
	"fmt"
	"math"

	"github.com/tokenwise/tokenwise/policies"
	"github.com/tokenwise/tokenwise/tokens"
)

// Prices prices the calls of an evaluation: each example's input tokens
// (counted with package tokens on its request) plus OutputTokens, at the
// prices of the strong and of the weak model.
type Prices struct {
	StrongModel, WeakModel string
	Strong, Weak           policies.ModelSpec
	// OutputTokens is the assumed length of every answer. Zero: 256.
	OutputTokens int64
}

// PricesFor looks the two models up in p (its models section, then the
// catalog). A nil p reads the catalog only.
func PricesFor(p *policies.Policy, strong, weak string) (*Prices, error) {
	if p == nil {
		p = &policies.Policy{Version: policies.Version}
	}
	s, ok := p.Model(strong)
	if !ok || !s.HasPrice() {
		return nil, fmt.Errorf("routeeval: no price for the strong model %q", strong)
	}
	w, ok := p.Model(weak)
	if !ok || !w.HasPrice() {
		return nil, fmt.Errorf("routeeval: no price for the weak model %q", weak)
	}
	return &Prices{StrongModel: strong, WeakModel: weak, Strong: s, Weak: w}, nil
}

// Config configures Evaluate. The zero value is usable.
type Config struct {
	// Target is the quality target as a PGR in (0,1]: the share of the
	// weak-to-strong quality gap to recover. Zero: 0.9.
	Target float64
	// RandomRouters is the number of random routers of the band. Zero: 200.
	RandomRouters int
	// Seed seeds the random routers.
	Seed uint64
	// Prices prices the operating points; nil: no costs.
	Prices *Prices
}

func (c Config) target() float64 {
	if c.Target <= 0 {
		return 0.9
	}
	return min(c.Target, 1)
}

func (c Config) routers() int {
	if c.RandomRouters <= 0 {
		return 200
	}
	return c.RandomRouters
}

// Operating is one operating point on a data set.
type Operating struct {
	Threshold float64 // score >= Threshold → strong; +Inf: none
	Strong    float64 // fraction of calls sent to the strong model
	Acc       float64 // mean quality
	PGR       float64
	// Costs in micro-USD, when the evaluation has prices.
	CostPico, AllStrongPico int64
}

// Saving is the cost saved against sending every call to the strong
// model, as a fraction (0 without prices).
func (o Operating) Saving() float64 {
	if o.AllStrongPico == 0 {
		return 0
	}
	return 1 - float64(o.CostPico)/float64(o.AllStrongPico)
}

// RulePoint is a first-match rule policy's single operating point,
// compared with random routers sending the same share of calls to the
// strong model.
type RulePoint struct {
	Operating
	RandomMean, RandomLo, RandomHi float64
}

// Inside reports whether the rule point is within the random band.
func (r RulePoint) Inside() bool { return r.Acc >= r.RandomLo && r.Acc <= r.RandomHi }

// Report is the evaluation of one scorer on one data set.
type Report struct {
	Scorer     string
	N          int
	Categories int
	Curve      Curve
	APGR       float64
	CPT50      float64 // fraction of strong calls to reach PGR 0.5; NaN if never
	CPT80      float64
	Oracle     Curve
	OracleAPGR float64
	Random     Band
	Target     float64
	// AtTarget is the cheapest threshold of the scorer reaching Target on
	// this data (fitted on the data it reports on: optimistic).
	AtTarget Operating
	// Rule is the policy's own operating point (Policy scorers only).
	Rule *RulePoint
	// Prices, and the mean input tokens of a call, when priced.
	Prices         *Prices
	AvgInputTokens float64
	Transfer       *Transfer
}

// Transfer is what a threshold fitted on one file does on another.
type Transfer struct {
	File string
	// Fitted is the threshold's operating point on the file it was fitted
	// on (Report.AtTarget); There is the same threshold on File.
	Fitted, There Operating
	// Needed is the cheapest threshold reaching the target on File itself.
	Needed Operating
	// APGR is the scorer's APGR on File, RandomHi the 95th percentile of
	// random routers' APGR there.
	APGR, RandomHi float64
}

// Transfers reports whether the threshold carries over to the other file:
// it still meets the target there (within 0.05 of PGR), without sending
// more than 5 points more calls to the strong model than that file needs,
// and the scorer ranks that file better than random routers do.
func (t *Transfer) Transfers(target float64) bool {
	return t.There.PGR >= target-0.05 && t.There.Strong <= t.Needed.Strong+0.05 && t.APGR > t.RandomHi
}

// costs holds the per-example costs of both models.
type costs struct {
	strong, weak []int64
	allStrong    int64
	avgInput     float64
}

func priceAll(ex []Example, p *Prices) *costs {
	if p == nil {
		return nil
	}
	out := p.OutputTokens
	if out <= 0 {
		out = 256
	}
	est := tokens.New()
	c := &costs{strong: make([]int64, len(ex)), weak: make([]int64, len(ex))}
	var in float64
	for i := range ex {
		ns := est.Request(p.StrongModel, ex[i].Request(p.StrongModel))
		nw := est.Request(p.WeakModel, ex[i].Request(p.WeakModel))
		in += float64(ns)
		c.strong[i] = int64(p.Strong.Cost(policies.TokenCounts{Input: ns, Output: out}))
		c.weak[i] = int64(p.Weak.Cost(policies.TokenCounts{Input: nw, Output: out}))
		c.allStrong += c.strong[i]
	}
	c.avgInput = in / float64(len(ex))
	return c
}

// apply is the operating point of sending the examples with decide(i)
// true to the strong model.
func apply(ex []Example, c *costs, th float64, decide func(i int) bool) Operating {
	w, s := baseline(ex)
	o := Operating{Threshold: th}
	var acc float64
	k := 0
	for i := range ex {
		strong := decide(i)
		if strong {
			k++
			acc += ex[i].Strong
		} else {
			acc += ex[i].Weak
		}
		if c != nil {
			if strong {
				o.CostPico += c.strong[i]
			} else {
				o.CostPico += c.weak[i]
			}
		}
	}
	n := float64(len(ex))
	o.Strong, o.Acc = float64(k)/n, acc/n
	o.PGR = (o.Acc - w) / (s - w)
	if c != nil {
		o.AllStrongPico = c.allStrong
	}
	return o
}

// Apply returns the operating point of threshold th on the examples.
func Apply(ex []Example, scores []float64, th float64, p *Prices) Operating {
	return apply(ex, priceAll(ex, p), th, func(i int) bool { return scores[i] >= th })
}

// FitThreshold returns the largest threshold (fewest strong calls) whose
// PGR on the examples reaches target.
func FitThreshold(ex []Example, scores []float64, target float64) float64 {
	c := CurveOf(ex, scores)
	for i, p := range c.Points {
		if c.PGR(p.Acc) >= target-1e-12 {
			return c.Thresholds[i]
		}
	}
	return c.Thresholds[len(c.Thresholds)-1]
}

// Evaluate scores ex with sc and reports its curve, its APGR and CPTs, the
// random band and the oracle, and the operating point at the quality
// target; for a *Policy, also the policy's own operating point.
func Evaluate(ex []Example, sc Scorer, cfg Config) (*Report, error) {
	if len(ex) == 0 {
		return nil, fmt.Errorf("%w: no examples", ErrData)
	}
	w, s := baseline(ex)
	if s <= w {
		return nil, fmt.Errorf("%w (weak %.3f, strong %.3f)", ErrNoGap, w, s)
	}
	scores, err := sc.Scores(ex)
	if err != nil {
		return nil, err
	}
	if len(scores) != len(ex) {
		return nil, errors.New("routeeval: scorer returned a wrong number of scores")
	}
	for i, v := range scores {
		if math.IsNaN(v) {
			return nil, fmt.Errorf("routeeval: scorer returned NaN for line %d", ex[i].Line)
		}
	}
	r := &Report{Scorer: sc.Name(), N: len(ex), Target: cfg.target(), Prices: cfg.Prices}
	cats := map[string]bool{}
	for i := range ex {
		if ex[i].Category != "" {
			cats[ex[i].Category] = true
		}
	}
	r.Categories = len(cats)
	r.Curve = CurveOf(ex, scores)
	r.APGR = r.Curve.APGR()
	r.CPT50, r.CPT80 = cpt(&r.Curve, 0.5), cpt(&r.Curve, 0.8)
	r.Oracle = CurveOf(ex, OracleScores(ex))
	r.OracleAPGR = r.Oracle.APGR()
	r.Random = RandomBand(ex, cfg.routers(), cfg.Seed)
	c := priceAll(ex, cfg.Prices)
	if c != nil {
		r.AvgInputTokens = c.avgInput
	}
	th := FitThreshold(ex, scores, r.Target)
	r.AtTarget = apply(ex, c, th, func(i int) bool { return scores[i] >= th })
	if p, ok := sc.(*Policy); ok {
		op := apply(ex, c, math.NaN(), func(i int) bool { return p.Decisions[i] })
		rp := RulePoint{Operating: op}
		rp.RandomMean, rp.RandomLo, rp.RandomHi = r.Random.At(op.Strong)
		r.Rule = &rp
	}
	return r, nil
}

func cpt(c *Curve, pgr float64) float64 {
	f, ok := c.CPT(pgr)
	if !ok {
		return math.NaN()
	}
	return f
}

// EvaluateTransfer adds to r what r's threshold at the target, fitted on
// the data r reports on, does on other (scored by sc).
func EvaluateTransfer(r *Report, other []Example, file string, sc Scorer, cfg Config) error {
	w, s := baseline(other)
	if s <= w {
		return fmt.Errorf("%s: %w (weak %.3f, strong %.3f)", file, ErrNoGap, w, s)
	}
	scores, err := sc.Scores(other)
	if err != nil {
		return err
	}
	c := priceAll(other, cfg.Prices)
	t := &Transfer{File: file, Fitted: r.AtTarget}
	th := r.AtTarget.Threshold
	t.There = apply(other, c, th, func(i int) bool { return scores[i] >= th })
	need := FitThreshold(other, scores, r.Target)
	t.Needed = apply(other, c, need, func(i int) bool { return scores[i] >= need })
	cv := CurveOf(other, scores)
	t.APGR = cv.APGR()
	t.RandomHi = RandomBand(other, cfg.routers(), cfg.Seed).APGRHi
	r.Transfer = t
	return nil
}
