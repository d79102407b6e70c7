package routeeval

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/tokenwise/tokenwise/llmwrap/route"
	"github.com/tokenwise/tokenwise/llmwrap/route/learn"
)

// Scorer scores examples: higher means more in need of the strong model.
type Scorer interface {
	// Name describes the scorer in reports.
	Name() string
	// Scores returns one score per example.
	Scores(ex []Example) ([]float64, error)
}

// Length scores a query by the length of its text in bytes: the naive
// "long prompts are hard" baseline.
type Length struct{}

// Name implements Scorer.
func (Length) Name() string { return "length baseline (bytes of the last user message)" }

// Scores implements Scorer.
func (Length) Scores(ex []Example) ([]float64, error) {
	s := make([]float64, len(ex))
	for i := range ex {
		s[i] = float64(len(ex[i].Text))
	}
	return s, nil
}

// CategoryPrior scores a query by the mean gain (strong − weak) of its
// category on training data, shrunk towards the overall mean; an unknown
// category scores the overall mean.
type CategoryPrior struct {
	prior  map[string]float64
	global float64
}

// priorWeight is the pseudo-count of the overall mean in a category's prior.
const priorWeight = 5

// FitCategoryPrior estimates the prior of each category of train.
func FitCategoryPrior(train []Example) *CategoryPrior {
	sum := map[string]float64{}
	cnt := map[string]float64{}
	var total float64
	for i := range train {
		g := train[i].Gain()
		sum[train[i].Category] += g
		cnt[train[i].Category]++
		total += g
	}
	c := &CategoryPrior{prior: map[string]float64{}}
	if len(train) > 0 {
		c.global = total / float64(len(train))
	}
	for k, s := range sum {
		c.prior[k] = (s + priorWeight*c.global) / (cnt[k] + priorWeight)
	}
	return c
}

// Score returns the prior of a category.
func (c *CategoryPrior) Score(category string) float64 {
	if p, ok := c.prior[category]; ok {
		return p
	}
	return c.global
}

// CategoryBaseline is the per-category baseline as a Scorer. With Fitted
// nil it is cross-fitted on the data it scores (each fold scored by the
// priors of the other folds), so that in-domain figures are not the
// priors' own training data; with Fitted set, it scores with those priors
// (fitted on another file).
type CategoryBaseline struct {
	Fitted *CategoryPrior
	Folds  int    // 0: 5
	Seed   uint64 // of the folds
}

// Name implements Scorer.
func (c CategoryBaseline) Name() string {
	if c.Fitted != nil {
		return "per-category baseline (priors of another file)"
	}
	return fmt.Sprintf("per-category baseline (%d-fold cross-fitted)", c.folds())
}

func (c CategoryBaseline) folds() int {
	if c.Folds <= 0 {
		return 5
	}
	return c.Folds
}

// Scores implements Scorer.
func (c CategoryBaseline) Scores(ex []Example) ([]float64, error) {
	s := make([]float64, len(ex))
	if c.Fitted != nil {
		for i := range ex {
			s[i] = c.Fitted.Score(ex[i].Category)
		}
		return s, nil
	}
	fold := folds(len(ex), c.folds(), c.Seed)
	for f := range c.folds() {
		var train []Example
		for i := range ex {
			if fold[i] != f {
				train = append(train, ex[i])
			}
		}
		p := FitCategoryPrior(train)
		for i := range ex {
			if fold[i] == f {
				s[i] = p.Score(ex[i].Category)
			}
		}
	}
	return s, nil
}

// folds assigns each of n items to one of k folds of (nearly) equal size,
// in a seeded random order.
func folds(n, k int, seed uint64) []int {
	perm := rand.New(rand.NewPCG(seed, 0x5eed)).Perm(n)
	f := make([]int, n)
	for j, i := range perm {
		f[i] = j % k
	}
	return f
}

// Learned scores with a learned model (package learn).
type Learned struct {
	Model *learn.Model
	Label string // how it is named in reports, e.g. the weights file
}

// Name implements Scorer.
func (l Learned) Name() string { return "learned scorer " + l.Label }

// Scores implements Scorer.
func (l Learned) Scores(ex []Example) ([]float64, error) {
	s := make([]float64, len(ex))
	for i := range ex {
		s[i] = l.Model.Score(ex[i].Text)
	}
	return s, nil
}

// Policy scores with a policy's router (its routing rules, and its
// learned scorer when it has one), replaying each example as a request
// without tools, outside a run. A call the router sends to Strong scores
// 1, any other call 0; with a learned scorer, the calls no rule matched
// score the learned score instead (rules to Strong score 2, other rules
// -1), so that the curve is the learned threshold's and the operating
// point the policy's own.
type Policy struct {
	Router  route.Router
	Strong  string
	Learned *learn.Model // the policy's learned scorer, or nil
	Label   string
	// Decisions, filled by Scores, tells for each example whether the
	// router sent it to the strong model.
	Decisions []bool
}

// Name implements Scorer.
func (p *Policy) Name() string { return "policy " + p.Label }

// Scores implements Scorer.
func (p *Policy) Scores(ex []Example) ([]float64, error) {
	s := make([]float64, len(ex))
	p.Decisions = make([]bool, len(ex))
	ctx := context.Background()
	for i := range ex {
		req := ex[i].Request(p.Strong)
		d, ok := p.Router.Route(ctx, route.NewQuery(ctx, req))
		model := req.Model
		if ok && d.Model != "" {
			model = d.Model
		}
		strong := model == p.Strong
		p.Decisions[i] = strong
		switch {
		case p.Learned != nil && route.IsLearnedDecision(d):
			s[i] = p.Learned.Score(ex[i].Text)
		case strong && p.Learned != nil:
			s[i] = 2
		case strong:
			s[i] = 1
		case p.Learned != nil:
			s[i] = -1
		}
	}
	return s, nil
}
