package llmwrap

import (
	"context"
	"path/filepath"

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
	if p.Budget.Team.MaxUSD > 0 || p.Budget.Team.MaxTokens > 0 || p.Budget.Run.MaxUSD > 0 || p.Budget.Run.MaxTokens > 0 {
		b, err := o.budget(p)
		if err != nil {
			return nil, err
		}
		opts = append(opts, route.WithBudget(ledgerBudgetReader(b)))
	}
	opts = append(opts, route.WithWindows(windows(p)))
	opts = append(opts, o.routeOpts...)
	r, err := route.New(routeConfig(p), opts...)
	if err != nil {
		return nil, err
	}
	return r.Middleware(), nil
}

// NewRules compiles the routing rules of p (package route's built-in
// Router), its learned weights file resolved as WeightsPath says.
func NewRules(p *policies.Policy, opts ...route.RulesOption) (*route.Rules, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return route.NewRules(routeConfig(p), opts...)
}

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

// StrongOnly returns a copy of p that sends every call to model: no rules,
// no cascade, no regeneration (larger_window escalation is kept). It is
// the baseline a routed run is compared with, e.g. in the DevOps example's
// side-by-side cost. Empty model means p's routing.default. The copy
// shares p's other sections: do not mutate either.
func StrongOnly(p *policies.Policy, model string) *policies.Policy {
	c := *p
	if model == "" {
		model = p.Routing.Default
	}
	c.Routing = policies.Routing{Default: model, LargerWindow: p.Routing.LargerWindow}
	return &c
}
