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
	turnWalls []time.Duration // wall time of each tool turn

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

	Turn int // 1-based tool turn of the run (RecordToolTurn closes a turn); set by RecordTool when 0
}

// StartRun opens a run scope. Calls made with the returned context (and
// contexts derived from it) are recorded in the returned Run.
func StartRun(ctx context.Context, id string) (context.Context, *Run) {
	r := &Run{id: id, start: time.Now()}
	return context.WithValue(ctx, runKey{}, r), r
}

// WithRun returns ctx carrying the run r, opened earlier by StartRun: a
// server that receives one run's calls in several requests (the gateway,
// by X-Run-Id) puts each of them in the same Run, so that per-run budgets
// and limits hold across them.
func WithRun(ctx context.Context, r *Run) context.Context {
	return context.WithValue(ctx, runKey{}, r)
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
	if t.Turn == 0 {
		t.Turn = r.toolTurns + 1
	}
	r.tools = append(r.tools, t)
	r.mu.Unlock()
}

// RecordToolTurn adds the wall time of one turn of tool calls (several
// calls may have run in parallel within it).
func (r *Run) RecordToolTurn(wall time.Duration) {
	r.mu.Lock()
	r.toolTurns++
	r.toolWall += wall
	r.turnWalls = append(r.turnWalls, wall)
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

	RateWaits    int           // calls that waited for rate-limit admission
	RateWait     time.Duration // their total wait
	RateRefusals int           // rate-limit refusals
}

// ModelTotals sums what one model did in a run: Calls counts the calls it
// answered; Usage and CostPico sum every provider attempt made on it (so
// a failed attempt before a fallback counts under its own model), and add
// up to the run's totals exactly.
type ModelTotals struct {
	Calls     int
	CacheHits int // calls answered from the cache (no tokens spent)
	Usage     Usage
	CostPico  int64
	SavedPico int64
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
		if c.RateWait > 0 {
			t.RateWaits++
			t.RateWait += c.RateWait
		}
		t.RateRefusals += c.RateRefusals
		switch {
		case len(c.Attempts) > 0 && c.Cache != CacheHit:
			// each provider attempt under its own model (a fallback, a
			// cascade step or a regeneration billed on another model)
			if c.Model != "" {
				m := t.ByModel[c.Model]
				m.Calls++
				m.SavedPico += c.SavedPico
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
			if c.Cache == CacheHit {
				m.CacheHits++
			}
			m.Usage = m.Usage.Add(c.Usage)
			m.CostPico += c.CostPico
			m.SavedPico += c.SavedPico
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

// Report renders the run as a human-readable story: a header with the
// totals, one line per call (model, stage, tokens, USD, latency, cache
// status, routing rule, and what the answer did: the tools it asked for or
// "answer"), what happened inside calls (retries, fallbacks, hedges,
// downgrades and other layers' notes), the totals per model, and the
// tools by name per turn. Columns and lines with nothing to say are left
// out.
func (r *Run) Report() string {
	calls := r.Calls()
	t := r.Totals()
	r.mu.Lock()
	tools := append([]ToolRecord(nil), r.tools...)
	walls := append([]time.Duration(nil), r.turnWalls...)
	r.mu.Unlock()

	var b strings.Builder
	fmt.Fprintf(&b, "run %s: %s", r.id, plural(t.Calls, "call"))
	if t.Calls > 0 {
		fmt.Fprintf(&b, ", %s (%d in / %d out", plural64(t.Usage.Total(), "token"), t.Usage.InputTokens, t.Usage.OutputTokens)
		if t.Usage.CachedInputTokens > 0 {
			fmt.Fprintf(&b, ", %d cached", t.Usage.CachedInputTokens)
		}
		fmt.Fprintf(&b, "), %s, llm %s", FormatPico(t.CostPico), t.LLMTime.Round(time.Millisecond))
	}
	if t.ToolCalls > 0 {
		fmt.Fprintf(&b, ", %s in %s", plural(t.ToolCalls, "tool call"), t.ToolTime.Round(time.Millisecond))
	}
	fmt.Fprintf(&b, ", wall %s\n", t.Wall.Round(time.Millisecond))
	var hasCached, hasCache, hasErr, hasNext bool
	for _, c := range calls {
		hasCached = hasCached || c.Usage.CachedInputTokens > 0
		hasCache = hasCache || c.Cache != CacheNone
		hasErr = hasErr || c.Err != nil
		hasNext = hasNext || len(c.ToolCalls) > 0 || c.Final
	}
	cols := []string{"#", "model", "stage", "in"}
	if hasCached {
		cols = append(cols, "cached")
	}
	cols = append(cols, "out", "usd", "latency")
	if hasCache {
		cols = append(cols, "cache")
	}
	cols = append(cols, "rule")
	if hasNext {
		cols = append(cols, "→")
	}
	if hasErr {
		cols = append(cols, "error")
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	if len(calls) > 0 {
		fmt.Fprintln(tw, strings.Join(cols, "\t"))
	}
	for _, c := range calls {
		in, out, usd := fmt.Sprint(c.Usage.InputTokens), fmt.Sprint(c.Usage.OutputTokens), FormatPico(c.CostPico)
		if c.Cache == CacheHit {
			// Nothing was spent: say what was saved, not "0 tokens".
			in, out, usd = "-", "-", "saved "+FormatPico(c.SavedPico)
		}
		row := []string{fmt.Sprint(c.Seq), c.Model, string(c.Stage), in}
		if hasCached {
			row = append(row, cachedCell(c.Usage))
		}
		row = append(row, out, usd, c.Latency.Round(time.Millisecond).String())
		if hasCache {
			row = append(row, cacheCell(c.CallFacts))
		}
		rule := c.Rule
		for _, n := range c.Notes {
			if strings.HasPrefix(n, "budget:") && strings.Contains(n, "downgraded") {
				rule = strings.TrimPrefix(rule+"; budget downgrade → "+c.Model, "; ")
				break
			}
		}
		row = append(row, rule)
		if hasNext {
			next := strings.Join(c.ToolCalls, ", ")
			if next == "" && c.Final {
				next = "answer"
			}
			row = append(row, next)
		}
		if hasErr {
			e := ""
			if c.Err != nil {
				e = c.Err.Error()
			}
			row = append(row, e)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()
	for _, c := range calls {
		for _, line := range callStory(c) {
			fmt.Fprintf(&b, "  call %d: %s\n", c.Seq, line)
		}
	}

	models := make([]string, 0, len(t.ByModel))
	for m := range t.ByModel {
		models = append(models, m)
	}
	sort.Strings(models)
	for _, m := range models {
		mt := t.ByModel[m]
		if mt.Calls > 0 {
			fmt.Fprintf(&b, "  %s: %s", m, plural(mt.Calls, "call"))
		} else {
			// a model that answered no call but was billed for attempts
			// (a fallback's failure, a regenerated draft, a dated snapshot)
			fmt.Fprintf(&b, "  %s: attempts only", m)
		}
		if mt.CacheHits > 0 {
			fmt.Fprintf(&b, " (%d from the cache, saved %s)", mt.CacheHits, FormatPico(mt.SavedPico))
		}
		if mt.CacheHits < mt.Calls || mt.CostPico != 0 || !mt.Usage.IsZero() {
			fmt.Fprintf(&b, ", %s, %s", plural64(mt.Usage.Total(), "token"), FormatPico(mt.CostPico))
		}
		b.WriteString("\n")
	}
	if t.CacheHits > 0 || t.Saved.Total() > 0 {
		fmt.Fprintf(&b, "  saved: %s, %s", plural64(t.Saved.Total(), "token"), FormatPico(t.SavedPico))
		if t.CacheHits > 0 {
			fmt.Fprintf(&b, " (%s)", plural(t.CacheHits, "cache hit"))
		}
		b.WriteString("\n")
	}
	if len(tools) > 0 {
		fmt.Fprintf(&b, "  tools: %s\n", toolStory(tools, walls))
		if t.ToolTurns > 0 {
			fmt.Fprintf(&b, "         %s in %s, %s of tool time in %s wall", plural(t.ToolCalls, "call"), plural(t.ToolTurns, "turn"),
				t.ToolTime.Round(time.Millisecond), t.ToolWall.Round(time.Millisecond))
			if saved := t.ToolTime - t.ToolWall; saved > 0 {
				fmt.Fprintf(&b, " (parallel saved %s)", saved.Round(time.Millisecond))
			}
			b.WriteString("\n")
		}
	}
	if t.RateWaits > 0 || t.RateRefusals > 0 {
		fmt.Fprintf(&b, "  rate limits: %d calls waited %s, %d refused\n", t.RateWaits, t.RateWait.Round(time.Millisecond), t.RateRefusals)
	}
	if t.Artifacts > 0 {
		fmt.Fprintf(&b, "  artifacts: %d, ~%s kept out of the conversation\n", t.Artifacts, plural64(t.ArtifactSavedTokens, "token"))
	}
	return b.String()
}

// callStory tells what happened inside one call: its attempts (retries,
// fallbacks, hedges) and the notes of the layers (downgrades, compaction,
// fitted max_tokens, cache bypass reasons).
func callStory(c CallRecord) []string {
	var out []string
	for _, r := range c.Retries {
		out = append(out, fmt.Sprintf("%s failed (%s), retried after %s", r.Model, shortErr(r.Err), r.Wait.Round(time.Millisecond)))
	}
	if len(c.Attempts) > 1 {
		parts := make([]string, len(c.Attempts))
		for i, a := range c.Attempts {
			p := a.Model
			switch {
			case a.Hedge:
				p = "hedge " + p
			case i == 0:
			case c.Attempts[i-1].Err == nil:
				p = "then " + p // a regeneration or a cascade step
			case a.Model != c.Attempts[i-1].Model:
				p = "fallback " + p
			default:
				p = "again " + p
			}
			if a.Err != nil {
				p += " failed (" + shortErr(a.Err) + ")"
			} else {
				p += " ok"
			}
			if !a.Usage.IsZero() || a.CostPico != 0 {
				// each attempt billed under its own model
				p += fmt.Sprintf(" [%d in, %d cached, %d out, %s]", a.Usage.InputTokens, a.Usage.CachedInputTokens, a.Usage.OutputTokens, FormatPico(a.CostPico))
			}
			parts[i] = fmt.Sprintf("%s in %s", p, a.Latency.Round(time.Millisecond))
		}
		out = append(out, fmt.Sprintf("%d attempts: %s", len(c.Attempts), strings.Join(parts, " → ")))
	}
	for _, n := range c.Notes {
		if !strings.Contains(c.Rule, n) { // the router's notes are in the rule already
			out = append(out, n)
		}
	}
	return out
}

// shortErr is the first line of err, cut to 80 bytes.
func shortErr(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

// toolStory lists the tools by name per turn, "check_disk, check_memory
// (parallel) → clean_logs" (sorted by name within a turn); a turn whose
// calls overlapped in time is marked parallel.
func toolStory(tools []ToolRecord, walls []time.Duration) string {
	byTurn := map[int][]ToolRecord{}
	var turns []int
	for _, tr := range tools {
		if _, ok := byTurn[tr.Turn]; !ok {
			turns = append(turns, tr.Turn)
		}
		byTurn[tr.Turn] = append(byTurn[tr.Turn], tr)
	}
	sort.Ints(turns)
	parts := make([]string, 0, len(turns))
	for _, n := range turns {
		trs := byTurn[n]
		sort.SliceStable(trs, func(i, j int) bool {
			return trs[i].CallID < trs[j].CallID && trs[i].CallID != "" && trs[j].CallID != ""
		})
		names := make([]string, len(trs))
		var sum time.Duration
		for i, tr := range trs {
			names[i] = tr.Name
			if tr.Err != nil {
				names[i] += " (failed)"
			} else if tr.Cached {
				names[i] += " (cached)"
			}
			sum += tr.Duration
		}
		p := strings.Join(names, ", ")
		if len(trs) > 1 && n-1 < len(walls) && walls[n-1] < sum {
			p += " (parallel)"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " → ")
}

// plural renders n with its noun, "1 call", "2 calls".
func plural(n int, noun string) string { return plural64(int64(n), noun) }

func plural64(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
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
		CacheReason string   `json:"cache_reason,omitempty"`
		Input       int64    `json:"input_tokens"`
		Cached      int64    `json:"cached_input_tokens"`
		CachedShare float64  `json:"cached_share"`
		Output      int64    `json:"output_tokens"`
		Reasoning   int64    `json:"reasoning_tokens"`
		CostPico    int64    `json:"cost_usd_pico"`
		SavedPico   int64    `json:"saved_usd_pico,omitempty"`
		LatencyMs   float64  `json:"latency_ms"`
		Attempts    int      `json:"attempts"`
		Retries     int      `json:"retries,omitempty"`
		Final       bool     `json:"final_answer,omitempty"`
		ToolCalls   []string `json:"tool_calls,omitempty"`
		Billed      []billed `json:"billed_attempts,omitempty"`
		Notes       []string `json:"notes,omitempty"`
		Err         string   `json:"error,omitempty"`
		RateWaitMs  float64  `json:"rate_wait_ms,omitempty"`
		RateRefused int      `json:"rate_refusals,omitempty"`
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
		Run         string           `json:"run"`
		Calls       []call           `json:"calls"`
		Input       int64            `json:"input_tokens"`
		Output      int64            `json:"output_tokens"`
		CostPico    int64            `json:"cost_usd_pico"`
		SavedPico   int64            `json:"saved_usd_pico"`
		CacheHits   int              `json:"cache_hits"`
		ToolCalls   int              `json:"tool_calls"`
		ToolMs      float64          `json:"tool_ms"`
		ToolWallMs  float64          `json:"tool_wall_ms,omitempty"`
		Artifacts   int              `json:"artifacts,omitempty"`
		ArtSaved    int64            `json:"artifact_saved_tokens,omitempty"`
		WallMs      float64          `json:"wall_ms"`
		RateWaitMs  float64          `json:"rate_wait_ms,omitempty"`
		RateRefused int              `json:"rate_refusals,omitempty"`
		ByModel     map[string]model `json:"by_model"`
	}{RateWaitMs: ms(t.RateWait), RateRefused: t.RateRefusals, ToolWallMs: ms(t.ToolWall), Artifacts: t.Artifacts, ArtSaved: t.ArtifactSavedTokens, Run: r.id, Input: t.Usage.InputTokens, Output: t.Usage.OutputTokens, CostPico: t.CostPico,
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
			Rule: c.Rule, Cache: string(c.Cache), CacheReason: c.CacheReason, Input: c.Usage.InputTokens, Cached: c.Usage.CachedInputTokens, CachedShare: CachedShare(c.Usage),
			Output: c.Usage.OutputTokens, Reasoning: c.Usage.ReasoningTokens, CostPico: c.CostPico,
			SavedPico: c.SavedPico, LatencyMs: ms(c.Latency), Attempts: len(c.Attempts), Retries: len(c.Retries), Final: c.Final,
			Billed: billedAttempts(c.Attempts), ToolCalls: c.ToolCalls, Notes: c.Notes, Err: e,
			RateWaitMs: ms(c.RateWait), RateRefused: c.RateRefusals})
	}
	return json.Marshal(out)
}

// cacheCell renders a call's cache status with its reason, if any
// ("miss", "bypass: request not deterministic").
func cacheCell(f CallFacts) string {
	if f.CacheReason == "" {
		return string(f.Cache)
	}
	return string(f.Cache) + ": " + f.CacheReason
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
