package llmwrap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/tokenwise/tokenwise/llmwrap/route"
	"github.com/tokenwise/tokenwise/llmwrap/route/learn"
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
	opts = append(opts, route.WithWindows(windows(p)), route.WithMaxOutput(maxOutputs(p)))
	if o.learned != nil {
		// The weights Build read, whose digest keys the cache's answers.
		opts = append(opts, route.WithRulesOptions(route.WithLearnedModel(o.learned.model)))
	}
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

// learnedWeights is routing.learned's weights file as one Build read it:
// the router scores with model, and the cache keys its answers on digest,
// so that a retrained file's routes never meet the old file's answers.
type learnedWeights struct {
	model  *learn.Model
	digest string // hex SHA-256 of the file's bytes
}

// readLearned reads p's learned weights file once (a FIFO or a directory
// is refused before it is opened; no weights file is larger than 64 MiB).
func readLearned(p *policies.Policy) (*learnedWeights, error) {
	path := WeightsPath(p)
	b, err := func() ([]byte, error) {
		if fi, err := os.Stat(path); err != nil {
			return nil, err
		} else if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("%s: not a regular file", path)
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return io.ReadAll(io.LimitReader(f, 64<<20))
	}()
	if err != nil {
		return nil, fmt.Errorf("tokenwise/route: learned weights: %w", err)
	}
	m, err := learn.Read(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("tokenwise/route: learned weights: %s: %w", path, err)
	}
	sum := sha256.Sum256(b)
	return &learnedWeights{model: m, digest: hex.EncodeToString(sum[:])}, nil
}

// WeightsPath returns the path of p's routing.learned weights file: a
// relative path is resolved against the directory of the policy file that
// set it (as the loader recorded it), or left as is for a policy built in
// code.
func WeightsPath(p *policies.Policy) string { return p.WeightsFile() }

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
