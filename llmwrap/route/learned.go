package route

import (
	"cmp"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tokenwise/tokenwise/llmwrap/route/learn"
	"github.com/tokenwise/tokenwise/policies"
)

// learnedRoute is routing.learned compiled: the calls no rule matched go
// to strong when the learned score of their last user message reaches
// threshold, to weak otherwise.
type learnedRoute struct {
	model              *learn.Model
	threshold          float64
	strong, weak       string
	whyStrong, whyWeak string
}

// learnedPrefix starts the explanation of every decision of a learned
// scorer.
const learnedPrefix = "learned "

// IsLearnedDecision reports whether d was made by the policy's learned
// scorer (routing.learned) rather than by a rule or the default.
func IsLearnedDecision(d Decision) bool { return strings.HasPrefix(d.Rule, learnedPrefix) }

// WithLearnedModel gives the model of routing.learned instead of reading
// the policy's weights file.
func WithLearnedModel(m *learn.Model) RulesOption { return func(r *Rules) { r.learnedModel = m } }

// WeightsPath returns the path of p's routing.learned weights file: a
// relative path is resolved against the directory of the policy file that
// set it (as the loader recorded it), or left as is for a policy built in
// code.
func WeightsPath(p *policies.Policy) string {
	w := p.Routing.Learned.Weights
	if w == "" || filepath.IsAbs(w) {
		return w
	}
	for _, o := range p.Explain() {
		if o.Path == "routing.learned.weights" && o.File != "" {
			return filepath.Join(filepath.Dir(o.File), w)
		}
	}
	return w
}

// initLearned compiles routing.learned, reading its weights file unless a
// model was given with WithLearnedModel.
func (r *Rules) initLearned(p *policies.Policy) error {
	l := p.Routing.Learned
	if l.IsZero() {
		return nil
	}
	m := r.learnedModel
	if m == nil {
		var err error
		if m, err = learn.Load(WeightsPath(p)); err != nil {
			return fmt.Errorf("route: routing.learned.weights: %w", err)
		}
	} else if err := m.Check(); err != nil {
		return fmt.Errorf("route: routing.learned: %w", err)
	}
	lr := &learnedRoute{model: m, threshold: l.Threshold, strong: cmp.Or(l.Strong, p.Routing.Default), weak: l.Weak}
	if lr.threshold == 0 {
		lr.threshold = float64(m.Threshold)
	}
	th := strconv.FormatFloat(lr.threshold, 'g', 4, 64)
	name := learnedPrefix + strconv.Quote(filepath.Base(l.Weights))
	lr.whyStrong = name + ": score >= " + th + " → " + lr.strong
	lr.whyWeak = name + ": score < " + th + " → " + lr.weak
	r.learned = lr
	return nil
}

// route scores the last user message (allocation-free: explanations are
// prebuilt).
func (l *learnedRoute) route(q *Query) Decision {
	if l.model.Score(q.text(textLastUser)) >= l.threshold {
		return Decision{Model: l.strong, Rule: l.whyStrong}
	}
	return Decision{Model: l.weak, Rule: l.whyWeak}
}
