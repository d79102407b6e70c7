package route

import (
	"cmp"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tokenwise/tokenwise/llmwrap/route/learn"
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

// WithLearnedModel gives the model of Config.Learned instead of reading
// its weights file.
func WithLearnedModel(m *learn.Model) RulesOption { return func(r *Rules) { r.learnedModel = m } }

// initLearned compiles Config.Learned, reading its weights file unless a
// model was given with WithLearnedModel.
func (r *Rules) initLearned(cfg Config) error {
	l := cfg.Learned
	if l.IsZero() {
		return nil
	}
	m := r.learnedModel
	if m == nil {
		var err error
		if m, err = learn.Load(l.Weights); err != nil {
			return fmt.Errorf("tokenwise/route: learned weights: %w", err)
		}
	} else if err := m.Check(); err != nil {
		return fmt.Errorf("tokenwise/route: learned model: %w", err)
	}
	lr := &learnedRoute{model: m, threshold: l.Threshold, strong: cmp.Or(l.Strong, cfg.Default), weak: l.Weak}
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
