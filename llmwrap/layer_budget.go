package llmwrap

import (
	"context"
	"errors"

	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/llmwrap/route"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// WithBudgetStore sets the store of team budgets, e.g. a shared Redis store
// (adapters/redis.NewBudgetStore). Default: in memory. A policy with
// budget.store.kind redis requires it.
func WithBudgetStore(s budget.Store) Option {
	return func(o *options) { o.budgetStore = s }
}

// WithBudgetOptions passes options to the budget layer (clock, estimator,
// the ledger of its local share: budget.WithLocalStore).
func WithBudgetOptions(opts ...budget.Option) Option {
	return func(o *options) { o.budgetOpts = append(o.budgetOpts, opts...) }
}

// BudgetOptions returns the budget options that opts pass to the budget
// layer (WithBudgetOptions): for a budget made outside a chain (NewBudget)
// that reads the chains' ledgers as they do, by the same clock.
func BudgetOptions(opts ...Option) []budget.Option {
	var o options
	for _, f := range opts {
		f(&o)
	}
	return o.budgetOpts
}

// budgetLayer builds the budget layer (reserve … settle), under the
// fallback layer so that every target model is reserved at its own price.
func budgetLayer(p *policies.Policy, o *options) (middleware.Middleware, error) {
	b, err := o.budget(p)
	if err != nil {
		return nil, err
	}
	return b.Middleware(), nil
}

// budget returns the chain's budget, created once per Build: the router's
// budget_below conditions read the same ledger the budget layer charges.
// Without an explicit store, the in-memory ledger is kept in the build's
// State, so that a registry's reload keeps the money already spent.
func (o *options) budget(p *policies.Policy) (*budget.Budget, error) {
	if o.built != nil {
		return o.built, nil
	}
	opts := []budget.Option{budget.WithLogger(o.logger), budget.WithEstimator(o.estimator()), budget.WithCatalog(o.catalog)}
	if p.Budget.Store.OnUnavailable == policies.UnavailableLocal {
		// Kept in the build's State: a registry's reload does not give
		// back the local share spent while the store is down.
		opts = append(opts, budget.WithLocalStore(o.state.budgetLocalMemory()))
	}
	switch {
	case o.budgetStore != nil:
		opts = append(opts, budget.WithStore(o.budgetStore))
	case p.Budget.Store.Kind == policies.StoreRedis:
		return nil, errors.New("tokenwise/llmwrap: budget.store.kind is redis but no store was given: pass llmwrap.WithBudgetStore(redis.NewBudgetStore(client, ...))")
	default:
		opts = append(opts, budget.WithStore(o.state.budgetMemory()))
	}
	opts = append(opts, o.budgetOpts...)
	b, err := budget.New(budgetConfig(p), opts...)
	if err != nil {
		return nil, err
	}
	o.built = b
	return b, nil
}

// BudgetReader returns the reader of budget_below routing conditions of
// b: the remaining share of the team's ledger and of the run's (a run
// shared through b's store), the smaller of its USD and token shares.
// The gateway routes the calls it passes through (the Responses API) with
// it, as the chain routes chat calls.
func BudgetReader(b *budget.Budget) route.BudgetReader { return ledgerBudgetReader(b) }

// ledgerBudgetReader answers budget_below conditions from the budget's
// ledgers: of the team scope, and of the run scope for a shared run
// (middleware.OpenSharedRun, whose spend in other processes only its
// ledger in the store knows; the router reads a run of this process from
// its records). The answer is the smaller remaining share of its USD and
// token limits.
func ledgerBudgetReader(b *budget.Budget) route.BudgetReader {
	return route.BudgetReaderFunc(func(ctx context.Context, scope route.BudgetScope) (float64, bool) {
		var bal budget.Balance
		switch scope {
		case route.BudgetScopeTeam:
			r, err := b.Remaining(ctx, b.Team(ctx))
			if err != nil {
				return 0, false
			}
			bal = r.Balance
		case route.BudgetScopeRun:
			run := middleware.RunFrom(ctx)
			if run == nil {
				return 0, false
			}
			if key, _ := run.Shared(); key == "" {
				return 0, false
			}
			var err error
			if bal, err = b.RunBalanceContext(ctx, run); err != nil {
				return 0, false
			}
		default:
			return 0, false
		}
		frac, ok := 1.0, false
		if l := bal.Limit.USDMicros; l > 0 {
			frac, ok = min(frac, float64(bal.Remaining().USDMicros)/float64(l)), true
		}
		if l := bal.Limit.Tokens; l > 0 {
			frac, ok = min(frac, float64(bal.Remaining().Tokens)/float64(l)), true
		}
		return max(frac, 0), ok
	})
}
