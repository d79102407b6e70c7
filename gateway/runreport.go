package gateway

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
)

// RunReport is the answer of GET /v1/runs/{id}: what the run of X-Run-Id
// id of the caller's team has cost so far. With Redis (Shared) its sums
// cover the calls every replica served; without, the calls this replica
// served. Costs are exact: the decimal strings are the pico-dollar sums,
// unrounded.
type RunReport struct {
	Object string `json:"object"` // "tokenwise.run"
	ID     string `json:"id"`
	Team   string `json:"team"`
	// Shared is true when the sums are those of every replica (the run's
	// store in Redis), false when they are this replica's calls only.
	Shared bool `json:"shared"`
	// LostCalls counts calls of this replica whose figures Redis did not
	// take (it was unreachable when they finished): the shared sums lack
	// them.
	LostCalls int       `json:"lost_calls,omitempty"`
	StartedAt time.Time `json:"started_at"`
	WallMs    float64   `json:"wall_ms"`

	RunFigures
	FailedCalls int `json:"failed_calls"`
	// SavedUSD is what the cache's hits would have cost (what a context
	// compaction saved is not the cache's: it is CompactionSavedUSD).
	SavedUSD  string `json:"saved_usd"`
	SavedPico int64  `json:"saved_usd_pico"`
	// CompactionSavedUSD is what the context compaction of the team's
	// policy saved: the input tokens it took out of the calls' requests,
	// at their models' input price, as the library's run report counts
	// them.
	CompactionSavedUSD  string `json:"compaction_saved_usd"`
	CompactionSavedPico int64  `json:"compaction_saved_usd_pico"`
	// RoutingSavedUSD is what routing saved against the models the calls
	// asked for, at the tokens their answers used (negative: what it cost
	// more).
	RoutingSavedUSD  string  `json:"routing_saved_usd"`
	RoutingSavedPico int64   `json:"routing_saved_usd_pico"`
	LLMMs            float64 `json:"llm_ms"` // the calls' latencies, summed
	// EstimatedCalls counts the calls billed, in part or whole, an
	// estimate of their usage rather than the provider's count (a stream
	// cut before its usage, a server that reports none, an attempt
	// cancelled or timed out in flight, an answer cut after its status);
	// EstimatedUSD is what those estimated attempts cost (part of
	// cost_usd).
	EstimatedCalls int    `json:"estimated_calls,omitempty"`
	EstimatedUSD   string `json:"estimated_usd,omitempty"`
	EstimatedPico  int64  `json:"estimated_usd_pico,omitempty"`

	// Limits are what the team's policy allows the run, and what is left.
	Limits RunLimits `json:"limits"`

	// ByModel is each model's part: every provider attempt on it (a
	// fallback's failed attempt counts under its own model), so the
	// models' costs add up to the run's.
	ByModel map[string]RunFigures `json:"by_model"`
}

// RunFigures are the figures of a RunReport, for the run and for each of
// its models.
type RunFigures struct {
	Calls             int    `json:"calls"`
	CacheHits         int    `json:"cache_hits"`
	InputTokens       int64  `json:"input_tokens"`
	CachedInputTokens int64  `json:"cached_input_tokens"`
	OutputTokens      int64  `json:"output_tokens"`
	ReasoningTokens   int64  `json:"reasoning_tokens"`
	CostUSD           string `json:"cost_usd"`
	CostPico          int64  `json:"cost_usd_pico"`
}

// RunLimits are a run's limits under its team's policy (limits and
// budget.run) and what is left of them: the calls started so far (every
// replica's with Redis) against the call limit, the deadline from the
// run's start, and the run budget's ledger (spent, held by calls in
// flight, remaining). A limit the policy does not set is absent.
type RunLimits struct {
	CallsStarted    int       `json:"calls_started"`
	MaxCalls        int       `json:"max_calls,omitempty"`
	CallsLeft       *int      `json:"calls_left,omitempty"`
	Deadline        time.Time `json:"deadline,omitzero"`
	SpentUSD        string    `json:"spent_usd,omitempty"`
	ReservedUSD     string    `json:"reserved_usd,omitempty"`
	BudgetUSD       string    `json:"budget_usd,omitempty"`
	RemainingUSD    string    `json:"remaining_usd,omitempty"`
	SpentTokens     int64     `json:"spent_tokens,omitempty"`
	BudgetTokens    int64     `json:"budget_tokens,omitempty"`
	RemainingTokens *int64    `json:"remaining_tokens,omitempty"`
}

// runLimits returns the limits of run under team's policy; st is what is
// known of it (its numbered calls, its start).
func (s *Server) runLimits(ctx context.Context, team string, run *middleware.Run, st middleware.RunState) RunLimits {
	p := s.pol.Policy(team)
	l := RunLimits{CallsStarted: st.Calls}
	maxCalls, timeout := llmwrap.RunLimits(p)
	if maxCalls > 0 {
		left := max(maxCalls-st.Calls, 0)
		l.MaxCalls, l.CallsLeft = maxCalls, &left
	}
	if timeout > 0 && !st.Start.IsZero() {
		l.Deadline = st.Start.Add(timeout).UTC()
	}
	if rb := p.Budget.Run; rb.MaxUSD > 0 || rb.MaxTokens > 0 {
		b, err := s.ledgers(p)
		if err != nil {
			return l
		}
		bal, err := b.RunBalanceContext(ctx, run)
		if err != nil {
			return l // (the store did not answer: the budget's figures are left out)
		}
		l.SpentUSD, l.ReservedUSD, l.SpentTokens = usd(bal.Used.USDMicros), usd(bal.Reserved.USDMicros), bal.Used.Tokens
		if bal.Limit.USDMicros > 0 {
			l.BudgetUSD, l.RemainingUSD = usd(bal.Limit.USDMicros), usd(max(bal.Remaining().USDMicros, 0))
		}
		if bal.Limit.Tokens > 0 {
			n := max(bal.Remaining().Tokens, 0)
			l.BudgetTokens, l.RemainingTokens = bal.Limit.Tokens, &n
		}
	}
	return l
}

// figures returns the RunFigures of calls, cache hits, usage and cost.
func figures(calls, hits int, u middleware.Usage, costPico int64) RunFigures {
	return RunFigures{Calls: calls, CacheHits: hits, InputTokens: u.InputTokens, CachedInputTokens: u.CachedInputTokens,
		OutputTokens: u.OutputTokens, ReasoningTokens: u.ReasoningTokens, CostUSD: picoUSD(costPico), CostPico: costPico}
}

var (
	errRunNotFound = &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "run_not_found",
		Message: "No run of your team has this id: runs are named by the X-Run-Id header of their chat completions, and forgotten after limits.run_idle without a call."}
	errInvalidRunID = &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "invalid_run_id",
		Message: "X-Run-Id must be at most 128 printable characters"}
)

// validRunID reports whether id may name a run (X-Run-Id).
func validRunID(id string) bool {
	return len(id) <= maxRunID && !strings.ContainsFunc(id, func(c rune) bool { return c < 0x20 || c == 0x7f })
}

// runReport answers GET /v1/runs/{id}.
func (s *Server) runReport(w http.ResponseWriter, r *http.Request, k keyEntry) {
	id := r.PathValue("id")
	if id == "" || !validRunID(id) {
		errInvalidRunID.write(w)
		return
	}
	key := runKey(k.team, id)
	ctx := middleware.WithTeam(r.Context(), k.team)
	var (
		st     middleware.RunState
		shared bool
		lost   int
	)
	run := s.runs.peek(key)
	switch sums, ok := s.runs.store.(middleware.RunSums); {
	case run != nil:
		// A store that does not answer leaves this replica's own record.
		st, shared, lost, _ = run.SharedState(ctx)
	case ok:
		// A run another replica served.
		var found bool
		var err error
		st, found, err = sums.Sums(ctx, key)
		switch {
		case err != nil:
			(&apiError{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "run_store_unavailable",
				Message: "The run store (Redis) did not answer."}).write(w)
			return
		case !found:
			errRunNotFound.write(w)
			return
		}
		shared = true
		if !st.Start.IsZero() {
			st.Sums.Wall = time.Since(st.Start)
		}
		run = middleware.OpenSharedRun(id, key, s.runs.store) // for its ledger in the budget store
	default:
		errRunNotFound.write(w)
		return
	}
	t, start := st.Sums, st.Start
	out := RunReport{Object: "tokenwise.run", ID: id, Team: k.team, Shared: shared, LostCalls: lost,
		StartedAt: start.UTC(), WallMs: ms(t.Wall), RunFigures: figures(t.Calls, t.CacheHits, t.Usage, t.CostPico),
		FailedCalls:     t.Failed,
		RoutingSavedUSD: picoUSD(t.RoutingSavedPico), RoutingSavedPico: t.RoutingSavedPico, LLMMs: ms(t.LLMTime),
		EstimatedCalls: t.EstimatedCalls, EstimatedPico: t.EstimatedPico,
		ByModel: make(map[string]RunFigures, len(t.ByModel))}
	if t.EstimatedCalls > 0 {
		out.EstimatedUSD = picoUSD(t.EstimatedPico)
	}
	for name, m := range t.ByModel {
		out.ByModel[name] = figures(m.Calls, m.CacheHits, m.Usage, m.CostPico)
		// The models' savings are their cache hits' (t.SavedPico also
		// has what compactions saved).
		out.SavedPico = middleware.SatAdd(out.SavedPico, m.SavedPico)
	}
	out.SavedUSD = picoUSD(out.SavedPico)
	// The run's savings less its cache hits' are its compactions'.
	out.CompactionSavedPico = max(t.SavedPico-out.SavedPico, 0)
	out.CompactionSavedUSD = picoUSD(out.CompactionSavedPico)
	out.Limits = s.runLimits(ctx, k.team, run, st)
	writeJSON(w, http.StatusOK, out)
}

// picoUSD renders pico-dollars as an exact decimal string of dollars,
// unrounded: 56_400_000 -> "0.0000564".
func picoUSD(pico int64) string {
	return strings.Replace(middleware.FormatPico(pico), "$", "", 1)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
