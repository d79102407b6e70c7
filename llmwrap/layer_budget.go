package llmwrap

import (
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

type budgetStoreKey struct{}
type budgetOptionsKey struct{}

// WithBudgetStore sets the store of team budgets, e.g. a shared Redis store
// (adapters/redis.NewBudgetStore). Default: in memory. A policy with
// budget.store.kind redis requires it.
func WithBudgetStore(s budget.Store) Option {
	return func(o *options) { o.set(budgetStoreKey{}, s) }
}

// WithBudgetOptions passes options to the budget layer (clock, estimator).
func WithBudgetOptions(opts ...budget.Option) Option {
	return func(o *options) {
		prev, _ := o.get(budgetOptionsKey{}).([]budget.Option)
		o.set(budgetOptionsKey{}, append(prev, opts...))
	}
}

// budgetLayer builds the budget layer (reserve … settle), under the
// fallback layer so that every target model is reserved at its own price.
func budgetLayer(p *policies.Policy, o *options) (middleware.Middleware, error) {
	opts := []budget.Option{budget.WithLogger(o.logger)}
	if s, ok := o.get(budgetStoreKey{}).(budget.Store); ok && s != nil {
		opts = append(opts, budget.WithStore(s))
	}
	if more, ok := o.get(budgetOptionsKey{}).([]budget.Option); ok {
		opts = append(opts, more...)
	}
	b, err := budget.New(p, opts...)
	if err != nil {
		return nil, err
	}
	return b.Middleware(), nil
}
