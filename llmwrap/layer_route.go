package llmwrap

import (
	"context"

	"github.com/tokenwise/tokenwise/llmwrap/route"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
	"github.com/tokenwise/tokenwise/tokens"
)

// WithRouter replaces the policy's routing rules by a Router of your own
// (a team's classifier). Regeneration, cascade and larger-window
// escalation still follow the policy.
func WithRouter(r route.Router) Option {
	return func(o *options) { o.routeOpts = append(o.routeOpts, route.WithRouter(r)) }
}

// WithCascadeCheck adds a custom acceptance check to the policy's cascade:
// an answer it rejects is escalated to the next model.
func WithCascadeCheck(name string, check route.Check) Option {
	return func(o *options) { o.routeOpts = append(o.routeOpts, route.WithCheck(name, check)) }
}

// WithBudgetReader lets budget_below routing conditions read the remaining
// share of a budget (the team scope; the run scope is read from the run
// without it).
func WithBudgetReader(b route.BudgetReader) Option {
	return func(o *options) { o.routeOpts = append(o.routeOpts, route.WithBudget(b)) }
}

// WithTokenEstimator sets the input token estimator of routing conditions
// and context-window checks. Give the budget's estimator so that a call's
// tokens are counted once.
func WithTokenEstimator(e route.Estimator) Option {
	return func(o *options) { o.routeOpts = append(o.routeOpts, route.WithEstimator(e)) }
}

func routeLayer(p *policies.Policy, o *options) (middleware.Middleware, error) {
	est := o.estimator()
	opts := []route.Option{
		// Memoised per call: the budget and compaction layers share the count.
		route.WithEstimator(route.EstimatorFunc(func(ctx context.Context, model string, req *middleware.Request) int64 {
			return tokens.ForCall(ctx, est, model, req)
		})),
	}
	if p.Budget.Team.MaxUSD > 0 || p.Budget.Team.MaxTokens > 0 {
		b, err := o.budget(p)
		if err != nil {
			return nil, err
		}
		opts = append(opts, route.WithBudget(teamBudgetReader(b)))
	}
	opts = append(opts, o.routeOpts...)
	return route.New(p, opts...)
}
