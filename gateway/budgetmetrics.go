package gateway

import (
	"context"
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/tokenwise/tokenwise/middleware"
)

// budgetScrapeTimeout bounds the reads of the team ledgers at a scrape of
// /metrics.
const budgetScrapeTimeout = 2 * time.Second

// registerBudgetGauges adds to /metrics, for each team a virtual key
// names whose policy sets a team budget, the budget of its current
// period as /v1/spend gives it, read from the store at each scrape:
// tokenwise_budget_spent_usd, _limit_usd and _projected_usd (the period's
// end at its pace, with what the calls in flight hold:
// budget.Remaining.Pace), and the same in tokens, by team and period. A
// Prometheus alert on projected above limit warns of a budget that will
// run out before its period ends: exactly when /v1/spend gives a
// runs_out_at.
func (s *Server) registerBudgetGauges() error {
	meter := s.metrics.provider.Meter("github.com/tokenwise/tokenwise/gateway")
	var usd [3]metric.Float64ObservableGauge
	var tok [3]metric.Int64ObservableGauge
	for i, what := range []string{"spent", "limit", "projected"} {
		desc := map[string]string{
			"spent":     "Spend of the team budget's current period, settled",
			"limit":     "Limit of the team budget per period",
			"projected": "Spend of the team budget's current period at its end, at the pace of its elapsed part, with what the calls in flight hold (daily and monthly periods, once an hour has passed)",
		}[what]
		var err error
		if usd[i], err = meter.Float64ObservableGauge("tokenwise.budget."+what+"_usd", metric.WithDescription(desc+", in US dollars")); err != nil {
			return err
		}
		if tok[i], err = meter.Int64ObservableGauge("tokenwise.budget."+what+"_tokens", metric.WithDescription(desc+", in tokens")); err != nil {
			return err
		}
	}
	insts := []metric.Observable{usd[0], usd[1], usd[2], tok[0], tok[1], tok[2]}
	_, err := meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, budgetScrapeTimeout)
		defer cancel()
		for _, team := range s.keyTeams() {
			p := s.pol.Policy(team)
			tb := p.Budget.Team
			if tb.MaxUSD <= 0 && tb.MaxTokens <= 0 {
				continue
			}
			b, err := s.ledgers(p)
			if err != nil {
				continue
			}
			tctx := middleware.WithTeam(ctx, team)
			rem, err := b.Remaining(tctx, b.Team(tctx))
			if err != nil {
				continue // the store did not answer: no figure rather than a zero
			}
			attrs := metric.WithAttributeSet(attribute.NewSet(attribute.String("team", team), attribute.String("period", string(tb.Period))))
			o.ObserveFloat64(usd[0], float64(rem.Used.USDMicros)/1e6, attrs)
			o.ObserveInt64(tok[0], rem.Used.Tokens, attrs)
			if rem.Limit.USDMicros > 0 {
				o.ObserveFloat64(usd[1], float64(rem.Limit.USDMicros)/1e6, attrs)
			}
			if rem.Limit.Tokens > 0 {
				o.ObserveInt64(tok[1], rem.Limit.Tokens, attrs)
			}
			if pace, ok := rem.Pace(); ok {
				o.ObserveFloat64(usd[2], float64(pace.Projected.USDMicros)/1e6, attrs)
				o.ObserveInt64(tok[2], pace.Projected.Tokens, attrs)
			}
		}
		return nil
	}, insts...)
	return err
}

// keyTeams returns the teams the virtual keys name, sorted, once each.
func (s *Server) keyTeams() []string {
	ks := s.keys.Load()
	if ks == nil {
		return nil
	}
	var teams []string
	for _, k := range ks.byHash {
		teams = append(teams, k.team)
	}
	slices.Sort(teams)
	return slices.Compact(teams)
}
