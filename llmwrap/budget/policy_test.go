package budget_test

import (
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/policies"
	"github.com/tokenwise/tokenwise/tokens"
)

// newBudget builds the budget of a policy's budget section the way
// llmwrap.Build does (its mapping is table-tested in package llmwrap):
// these tests state their budgets as policies because the policies'
// model catalog prices the calls.
func newBudget(p *policies.Policy, opts ...budget.Option) (*budget.Budget, error) {
	if p == nil {
		p = policies.Default()
	}
	b := p.Budget
	ttl := b.Store.ReservationTTL.Duration()
	if ttl <= 0 {
		ttl = max(budget.DefaultReservationTTL, p.Timeouts.Call.Duration())
	}
	cfg := budget.Config{
		Name:    p.Name,
		Request: budget.RequestLimit{MaxInputTokens: b.Request.MaxInputTokens, MaxOutputTokens: b.Request.MaxOutputTokens},
		Run:     budget.Amount{USDMicros: b.Run.MaxUSD.Micro(), Tokens: b.Run.MaxTokens},
		Team: budget.TeamLimit{
			Limit:  budget.Amount{USDMicros: b.Team.MaxUSD.Micro(), Tokens: b.Team.MaxTokens},
			Period: budget.Period(b.Team.Period),
			Window: b.Team.Window.Duration(),
		},
		OnExceed:        budget.OnExceed(b.OnExceed),
		DowngradeTo:     b.DowngradeTo,
		WarnAt:          b.WarnAt,
		MinOutputTokens: b.MinOutputTokens,
		KeyPrefix:       b.Store.KeyPrefix,
		ReservationTTL:  ttl,
		OnUnavailable:   budget.OnUnavailable(b.Store.OnUnavailable),
		LocalFraction:   b.Store.LocalFraction,
	}
	base := []budget.Option{budget.WithCatalog(llmwrap.Catalog(p)), budget.WithEstimator(tokens.New(tokens.WithModels(llmwrap.EstimatorModels(p))))}
	return budget.New(cfg, append(base, opts...)...)
}
