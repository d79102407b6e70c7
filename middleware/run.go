package middleware

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

type runKey struct{}

// Run is the scope of one agent task: every call made with its context is
// recorded, and middlewares keep per-run state (budgets, counters) in it.
// A Run is safe for concurrent use.
type Run struct {
	id    string
	start time.Time

	mu     sync.Mutex
	seq    int
	calls  []CallRecord
	tools  []ToolRecord
	values map[any]any

	toolTurns int
	toolWall  time.Duration

	spent       Usage // running sums of the recorded calls, for Spent
	spentMicros int64
}

// CallRecord is what a run remembers of one call.
type CallRecord struct {
	CallFacts
	Usage   Usage
	Latency time.Duration
	Start   time.Time
	Err     error
}

// ToolRecord is what a run remembers of one tool call.
type ToolRecord struct {
	Name     string
	CallID   string
	Duration time.Duration
	Err      error
	Cached   bool

	Artifact    string // artifact id when the result was offloaded
	SavedTokens int64  // estimated tokens the artifact kept out of the conversation
}

// StartRun opens a run scope. Calls made with the returned context (and
// contexts derived from it) are recorded in the returned Run.
func StartRun(ctx context.Context, id string) (context.Context, *Run) {
	r := &Run{id: id, start: time.Now()}
	return context.WithValue(ctx, runKey{}, r), r
}

// RunFrom returns the run of ctx, or nil outside a run.
func RunFrom(ctx context.Context) *Run {
	r, _ := ctx.Value(runKey{}).(*Run)
	return r
}

// ID returns the run's id.
func (r *Run) ID() string { return r.id }

// Started returns when the run started.
func (r *Run) Started() time.Time { return r.start }

// NextSeq reserves and returns the number of the next call of the run
// (1-based). Run guards count calls with it before they start.
func (r *Run) NextSeq() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	return r.seq
}

// Seq returns how many calls the run has started.
func (r *Run) Seq() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seq
}

// Record appends a finished call.
func (r *Run) Record(c CallRecord) {
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.spent = r.spent.Add(c.Usage)
	r.spentMicros += c.CostPico
	r.mu.Unlock()
}

// Spent returns the usage and cost (micro-USD) of the calls recorded so
// far, in constant time and without allocating: budget readers call it on
// every routing decision.
func (r *Run) Spent() (Usage, int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.spent, r.spentMicros
}

// RecordTool appends a finished tool call.
func (r *Run) RecordTool(t ToolRecord) {
	r.mu.Lock()
	r.tools = append(r.tools, t)
	r.mu.Unlock()
}

// RecordToolTurn adds the wall time of one turn of tool calls (several
// calls may have run in parallel within it).
func (r *Run) RecordToolTurn(wall time.Duration) {
	r.mu.Lock()
	r.toolTurns++
	r.toolWall += wall
	r.mu.Unlock()
}

// Calls returns the finished calls, in the order they finished.
func (r *Run) Calls() []CallRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]CallRecord(nil), r.calls...)
}

// Tools returns the finished tool calls.
func (r *Run) Tools() []ToolRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ToolRecord(nil), r.tools...)
}

// Value returns the run-scoped value stored under key, creating it with
// init when absent. Middlewares keep per-run state this way (a run budget's
// ledger, a compaction's stable prefix); key should be an unexported type.
func (r *Run) Value(key any, init func() any) any {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v, ok := r.values[key]; ok {
		return v
	}
	if r.values == nil {
		r.values = make(map[any]any)
	}
	v := init()
	r.values[key] = v
	return v
}

// Totals sums a run's calls.
type Totals struct {
	Calls     int
	Failed    int
	CacheHits int
	Usage     Usage
	CostPico  int64
	Saved     Usage
	SavedPico int64
	LLMTime   time.Duration // sum of call latencies
	ToolCalls int
	ToolTime  time.Duration // sum of tool durations
	Wall      time.Duration // since the run started
	ByModel   map[string]ModelTotals

	ToolTurns           int           // turns of tool calls (RecordToolTurn)
	ToolWall            time.Duration // wall time of those turns; ToolTime-ToolWall was saved by parallel runs
	Artifacts           int           // tool results offloaded to artifacts
	ArtifactSavedTokens int64         // estimated tokens those artifacts kept out of the conversation
}

// ModelTotals sums what one model did in a run: Calls counts the calls it
// answered; Usage and CostPico sum every provider attempt made on it (so
// a failed attempt before a fallback counts under its own model), and add
// up to the run's totals exactly.
type ModelTotals struct {
	Calls    int
	Usage    Usage
	CostPico int64
}

// Totals returns the run's sums so far.
func (r *Run) Totals() Totals {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := Totals{Calls: len(r.calls), ToolCalls: len(r.tools), Wall: time.Since(r.start), ByModel: map[string]ModelTotals{}}
	for _, c := range r.calls {
		if c.Err != nil {
			t.Failed++
		}
		if c.Cache == CacheHit {
			t.CacheHits++
		}
		t.Usage = t.Usage.Add(c.Usage)
		t.CostPico += c.CostPico
		t.Saved = t.Saved.Add(c.Saved)
		t.SavedPico += c.SavedPico
		t.LLMTime += c.Latency
		switch {
		case len(c.Attempts) > 0 && c.Cache != CacheHit:
			// each provider attempt under its own model (a fallback, a
			// cascade step or a regeneration billed on another model)
			if c.Model != "" {
				m := t.ByModel[c.Model]
				m.Calls++
				t.ByModel[c.Model] = m
			}
			for _, a := range c.Attempts {
				m := t.ByModel[a.Model]
				m.Usage = m.Usage.Add(a.Usage)
				m.CostPico += a.CostPico
				t.ByModel[a.Model] = m
			}
		case c.Model != "":
			m := t.ByModel[c.Model]
			m.Calls++
			m.Usage = m.Usage.Add(c.Usage)
			m.CostPico += c.CostPico
			t.ByModel[c.Model] = m
		}
	}
	for _, tr := range r.tools {
		t.ToolTime += tr.Duration
		if tr.Artifact != "" {
			t.Artifacts++
			t.ArtifactSavedTokens += tr.SavedTokens
		}
	}
	t.ToolTurns, t.ToolWall = r.toolTurns, r.toolWall
	return t
}

// FormatPico renders an exact amount of pico-USD (10^-12 dollars, the
// unit of every cost tokenwise reports) as dollars with at least two
// decimals and no trailing zeros, without rounding: 56_400_000 ->
// "$0.0000564". The text is the amount, so printed costs add up.
func FormatPico(pico int64) string {
	a := uint64(pico)
	sign := ""
	if pico < 0 {
		sign = "-"
		a = uint64(-(pico + 1)) + 1
	}
	fs := strings.TrimRight(fmt.Sprintf("%012d", a%1_000_000_000_000), "0")
	for len(fs) < 2 {
		fs += "0"
	}
	return sign + "$" + strconv.FormatUint(a/1_000_000_000_000, 10) + "." + fs
}

// FormatUSD renders micro-USD as dollars, e.g. 1234 -> "$0.001234".
func FormatUSD(micros int64) string {
	sign := ""
	if micros < 0 {
		sign, micros = "-", -micros
	}
	return fmt.Sprintf("%s$%d.%06d", sign, micros/1_000_000, micros%1_000_000)
}

// Report renders the run as a human-readable table: one line per call
// (model, stage, tokens, USD, latency, cache status, routing rule) and the
// totals, per model and for the run.
func (r *Run) Report() string {
	calls := r.Calls()
	t := r.Totals()
	var b strings.Builder
	fmt.Fprintf(&b, "run %s: %d calls, %d tokens (%d in / %d out, %d cached), %s, llm %s, tools %d in %s, wall %s\n",
		r.id, t.Calls, t.Usage.Total(), t.Usage.InputTokens, t.Usage.OutputTokens, t.Usage.CachedInputTokens,
		FormatPico(t.CostPico), t.LLMTime.Round(time.Millisecond), t.ToolCalls, t.ToolTime.Round(time.Millisecond),
		t.Wall.Round(time.Millisecond))
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tmodel\tstage\tin\tcached\tout\tusd\tlatency\tcache\trule\terror")
	for _, c := range calls {
		errText := ""
		if c.Err != nil {
			errText = c.Err.Error()
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", c.Seq, c.Model, c.Stage,
			c.Usage.InputTokens, cachedCell(c.Usage), c.Usage.OutputTokens, FormatPico(c.CostPico),
			c.Latency.Round(time.Millisecond), c.Cache, c.Rule, errText)
	}
	tw.Flush()
	models := make([]string, 0, len(t.ByModel))
	for m := range t.ByModel {
		models = append(models, m)
	}
	sort.Strings(models)
	for _, m := range models {
		mt := t.ByModel[m]
		fmt.Fprintf(&b, "  %s: %d calls, %d tokens, %s\n", m, mt.Calls, mt.Usage.Total(), FormatPico(mt.CostPico))
	}
	if t.CacheHits > 0 || t.Saved.Total() > 0 {
		fmt.Fprintf(&b, "  saved: %d tokens, %s (%d cache hits)\n", t.Saved.Total(), FormatPico(t.SavedPico), t.CacheHits)
	}
	if t.ToolTurns > 0 {
		fmt.Fprintf(&b, "  tools: %d calls in %d turns, %s of tool time in %s wall (parallel saved %s)\n",
			t.ToolCalls, t.ToolTurns, t.ToolTime.Round(time.Millisecond), t.ToolWall.Round(time.Millisecond),
			max(t.ToolTime-t.ToolWall, 0).Round(time.Millisecond))
	}
	if t.Artifacts > 0 {
		fmt.Fprintf(&b, "  artifacts: %d, ~%d tokens kept out of the conversation\n", t.Artifacts, t.ArtifactSavedTokens)
	}
	return b.String()
}

// MarshalJSON renders the run report as JSON.
func (r *Run) MarshalJSON() ([]byte, error) {
	type call struct {
		Seq         int      `json:"seq"`
		Model       string   `json:"model"`
		Requested   string   `json:"requested_model,omitempty"`
		Stage       Stage    `json:"stage,omitempty"`
		Rule        string   `json:"rule,omitempty"`
		Cache       string   `json:"cache,omitempty"`
		Input       int64    `json:"input_tokens"`
		Cached      int64    `json:"cached_input_tokens"`
		CachedShare float64  `json:"cached_share"`
		Output      int64    `json:"output_tokens"`
		Reasoning   int64    `json:"reasoning_tokens"`
		CostPico    int64    `json:"cost_usd_pico"`
		SavedPico   int64    `json:"saved_usd_pico,omitempty"`
		LatencyMs   float64  `json:"latency_ms"`
		Attempts    int      `json:"attempts"`
		Billed      []billed `json:"billed_attempts,omitempty"`
		Notes       []string `json:"notes,omitempty"`
		Err         string   `json:"error,omitempty"`
	}
	type model struct {
		Calls    int   `json:"calls"`
		Input    int64 `json:"input_tokens"`
		Cached   int64 `json:"cached_input_tokens"`
		Output   int64 `json:"output_tokens"`
		CostPico int64 `json:"cost_usd_pico"`
	}
	t := r.Totals()
	out := struct {
		Run        string           `json:"run"`
		Calls      []call           `json:"calls"`
		Input      int64            `json:"input_tokens"`
		Output     int64            `json:"output_tokens"`
		CostPico   int64            `json:"cost_usd_pico"`
		SavedPico  int64            `json:"saved_usd_pico"`
		CacheHits  int              `json:"cache_hits"`
		ToolCalls  int              `json:"tool_calls"`
		ToolMs     float64          `json:"tool_ms"`
		ToolWallMs float64          `json:"tool_wall_ms,omitempty"`
		Artifacts  int              `json:"artifacts,omitempty"`
		ArtSaved   int64            `json:"artifact_saved_tokens,omitempty"`
		WallMs     float64          `json:"wall_ms"`
		ByModel    map[string]model `json:"by_model"`
	}{ToolWallMs: ms(t.ToolWall), Artifacts: t.Artifacts, ArtSaved: t.ArtifactSavedTokens, Run: r.id, Input: t.Usage.InputTokens, Output: t.Usage.OutputTokens, CostPico: t.CostPico,
		SavedPico: t.SavedPico, CacheHits: t.CacheHits, ToolCalls: t.ToolCalls,
		ToolMs: ms(t.ToolTime), WallMs: ms(t.Wall), Calls: []call{}, ByModel: map[string]model{}}
	for name, m := range t.ByModel {
		out.ByModel[name] = model{Calls: m.Calls, Input: m.Usage.InputTokens, Cached: m.Usage.CachedInputTokens, Output: m.Usage.OutputTokens, CostPico: m.CostPico}
	}
	for _, c := range r.Calls() {
		e := ""
		if c.Err != nil {
			e = c.Err.Error()
		}
		out.Calls = append(out.Calls, call{Seq: c.Seq, Model: c.Model, Requested: c.RequestedModel, Stage: c.Stage,
			Rule: c.Rule, Cache: string(c.Cache), Input: c.Usage.InputTokens, Cached: c.Usage.CachedInputTokens, CachedShare: CachedShare(c.Usage),
			Output: c.Usage.OutputTokens, Reasoning: c.Usage.ReasoningTokens, CostPico: c.CostPico,
			SavedPico: c.SavedPico, LatencyMs: ms(c.Latency), Attempts: len(c.Attempts), Billed: billedAttempts(c.Attempts), Notes: c.Notes, Err: e})
	}
	return json.Marshal(out)
}

// billed is one provider attempt in the JSON report: its own model, usage
// and exact cost (the Meter's record).
type billed struct {
	Model    string `json:"model"`
	Input    int64  `json:"input_tokens"`
	Cached   int64  `json:"cached_input_tokens,omitempty"`
	Output   int64  `json:"output_tokens"`
	CostPico int64  `json:"cost_usd_pico"`
	Err      string `json:"error,omitempty"`
}

func billedAttempts(as []Attempt) []billed {
	if len(as) < 2 { // one attempt: the call's own fields say it all
		return nil
	}
	out := make([]billed, len(as))
	for i, a := range as {
		out[i] = billed{Model: a.Model, Input: a.Usage.InputTokens, Cached: a.Usage.CachedInputTokens, Output: a.Usage.OutputTokens, CostPico: a.CostPico}
		if a.Err != nil {
			out[i].Err = a.Err.Error()
		}
	}
	return out
}

// CachedShare returns the share of u's input tokens that the provider read
// from its prompt cache, in [0,1]; 0 without input.
func CachedShare(u Usage) float64 {
	if u.InputTokens <= 0 {
		return 0
	}
	return float64(u.CachedInputTokens) / float64(u.InputTokens)
}

// cachedCell renders cached input tokens with their share of the input.
func cachedCell(u Usage) string {
	if u.CachedInputTokens == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (%.0f%%)", u.CachedInputTokens, 100*CachedShare(u))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
