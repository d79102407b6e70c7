package gateway

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// Spend is the answer of GET /v1/spend: the caller's team budget in its
// current period, read from the store every replica shares.
type Spend struct {
	Team   string `json:"team"`
	Policy string `json:"policy"`
	// Tracked is false when the team's policy sets no team budget
	// (budget.team): no ledger keeps its spend, and the spend figures
	// are absent (Note says where its spend is: the gateway's metrics).
	Tracked bool   `json:"tracked"`
	Note    string `json:"note,omitempty"`
	// Period is the team budget's period (daily, monthly, rolling, ...);
	// empty when the policy has no team budget.
	Period      string    `json:"period,omitempty"`
	WindowStart time.Time `json:"window_start,omitzero"`
	WindowEnd   time.Time `json:"window_end,omitzero"`
	// Spent and Reserved are settled spend and the worst case of the calls
	// in flight; Limit and Remaining are absent in a unit without a limit.
	SpentUSD      string `json:"spent_usd,omitempty"`
	ReservedUSD   string `json:"reserved_usd,omitempty"`
	LimitUSD      string `json:"limit_usd,omitempty"`
	RemainingUSD  string `json:"remaining_usd,omitempty"`
	SpentTokens   int64  `json:"spent_tokens"`
	LimitTokens   int64  `json:"limit_tokens,omitempty"`
	RemainingTok  *int64 `json:"remaining_tokens,omitempty"`
	InFlightCalls int64  `json:"in_flight_calls"`
	// ProjectedUSD and ProjectedTokens are the period's spend at its end
	// at the pace of its elapsed part, with what the calls in flight hold
	// (spent × period ÷ elapsed + reserved), given once an hour of a daily
	// or monthly period has passed (a rolling window's spend is already a
	// window's worth). RunsOutAt is when, at that pace, what remains of a
	// limit (less what is reserved) is spent: present exactly when a
	// projection is over its limit (the time of the answer when nothing
	// remains). Forecasts, not bills (budget.Remaining.Pace).
	ProjectedUSD    string     `json:"projected_usd,omitempty"`
	ProjectedTokens *int64     `json:"projected_tokens,omitempty"`
	RunsOutAt       *time.Time `json:"runs_out_at,omitempty"`
}

func (s *Server) spend(w http.ResponseWriter, r *http.Request, k keyEntry) {
	p := s.pol.Policy(k.team)
	b, err := s.ledgers(p)
	if err != nil {
		classify(err, s.secrets...).write(w)
		return
	}
	ctx := middleware.WithTeam(r.Context(), k.team)
	rem, err := b.Remaining(ctx, b.Team(ctx))
	if err != nil {
		classify(err, s.secrets...).write(w)
		return
	}
	out := Spend{
		Team: k.team, Policy: cmpStr(p.Name, policies.DefaultTeam),
		SpentUSD: usd(rem.Used.USDMicros), ReservedUSD: usd(rem.Reserved.USDMicros),
		SpentTokens: rem.Used.Tokens, InFlightCalls: rem.InFlight,
	}
	if t := p.Budget.Team; t.MaxUSD > 0 || t.MaxTokens > 0 {
		out.Tracked, out.Period = true, string(t.Period)
		out.WindowStart, out.WindowEnd = rem.Window.Start, rem.Window.End
		if pace, ok := rem.Pace(); ok {
			out.ProjectedUSD = usd(pace.Projected.USDMicros)
			out.ProjectedTokens = &pace.Projected.Tokens
			if !pace.RunsOutAt.IsZero() {
				at := pace.RunsOutAt.UTC()
				out.RunsOutAt = &at
			}
		}
	} else {
		// Nothing keeps it: no "0.000000" that reads as nothing spent.
		out.SpentUSD, out.ReservedUSD, out.SpentTokens, out.InFlightCalls = "", "", 0, 0
		out.Note = "the team's policy sets no team budget (budget.team), so no ledger keeps its spend; " +
			"what it spends is in /metrics (tokenwise_cost_total by team) and in its runs' reports (/v1/runs/{id})"
	}
	if rem.Limit.USDMicros > 0 {
		out.LimitUSD = usd(rem.Limit.USDMicros)
		out.RemainingUSD = usd(rem.Remaining().USDMicros)
	}
	if rem.Limit.Tokens > 0 {
		out.LimitTokens = rem.Limit.Tokens
		n := rem.Remaining().Tokens
		out.RemainingTok = &n
	}
	writeJSON(w, http.StatusOK, out)
}

// ledgers returns p's budget for reading the ledgers the chains keep
// (/v1/spend, the /metrics gauges, a run's report): their store, and the
// budget options given with WithLLMOptions (a clock).
func (s *Server) ledgers(p *policies.Policy) (*budget.Budget, error) {
	return llmwrap.NewBudget(p, append(slices.Clip(s.budgetOpts), budget.WithStore(s.budgets), budget.WithLogger(s.logger))...)
}

func cmpStr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// usd renders micro-USD as an exact decimal string of dollars: "0.001234".
func usd(micros int64) string {
	sign := ""
	if micros < 0 {
		sign, micros = "-", -micros
	}
	return fmt.Sprintf("%s%d.%06d", sign, micros/1_000_000, micros%1_000_000)
}
