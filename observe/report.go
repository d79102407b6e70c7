package observe

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

// Report renders a run as a human-readable story: a header with the
// totals, one line per call (model, stage, tokens, USD, latency, cache
// status, routing rule, and what the answer did: the tools it asked for or
// "answer"), what happened inside calls (retries, fallbacks, hedges,
// downgrades and other layers' notes), the totals per model, and the
// tools by name per turn. Columns and lines with nothing to say are left
// out.
func Report(r *middleware.Run) string {
	calls := r.Calls()
	t := r.Totals()
	tools := r.Tools()
	walls := r.ToolTurnWalls()

	var b strings.Builder
	fmt.Fprintf(&b, "run %s: %s", r.ID(), plural(t.Calls, "call"))
	if t.Calls > 0 {
		fmt.Fprintf(&b, ", %s (%d in / %d out", plural64(t.Usage.Total(), "token"), t.Usage.InputTokens, t.Usage.OutputTokens)
		if t.Usage.CachedInputTokens > 0 {
			fmt.Fprintf(&b, ", %d cached", t.Usage.CachedInputTokens)
		}
		fmt.Fprintf(&b, "), %s", middleware.FormatPico(t.CostPico))
		if t.EstimatedCalls > 0 {
			// What no provider counted: the usage of those calls was estimated.
			fmt.Fprintf(&b, " (%s of it estimated, %s)", middleware.FormatPico(t.EstimatedPico), plural(t.EstimatedCalls, "call"))
		}
		fmt.Fprintf(&b, ", llm %s", t.LLMTime.Round(time.Millisecond))
	}
	if t.ToolCalls > 0 {
		fmt.Fprintf(&b, ", %s in %s", plural(t.ToolCalls, "tool call"), t.ToolTime.Round(time.Millisecond))
	}
	fmt.Fprintf(&b, ", wall %s\n", t.Wall.Round(time.Millisecond))
	var hasCached, hasCache, hasErr, hasNext bool
	for _, c := range calls {
		hasCached = hasCached || c.Usage.CachedInputTokens > 0
		hasCache = hasCache || c.Cache != middleware.CacheNone
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
		in, out, usd := fmt.Sprint(c.Usage.InputTokens), fmt.Sprint(c.Usage.OutputTokens), middleware.FormatPico(c.CostPico)
		if c.UsageEstimated() {
			usd = "~" + usd // in part an estimate: the provider reported no usage
		}
		if c.Cache == middleware.CacheHit {
			// Nothing was spent: say what was saved, not "0 tokens".
			in, out, usd = "-", "-", "saved "+middleware.FormatPico(c.SavedPico)
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
			fmt.Fprintf(&b, " (%d from the cache, saved %s)", mt.CacheHits, middleware.FormatPico(mt.SavedPico))
		}
		if mt.CacheHits < mt.Calls || mt.CostPico != 0 || !mt.Usage.IsZero() {
			fmt.Fprintf(&b, ", %s, %s", plural64(mt.Usage.Total(), "token"), middleware.FormatPico(mt.CostPico))
		}
		b.WriteString("\n")
	}
	if t.CacheHits > 0 || t.Saved.Total() > 0 {
		fmt.Fprintf(&b, "  saved: %s, %s", plural64(t.Saved.Total(), "token"), middleware.FormatPico(t.SavedPico))
		if t.CacheHits > 0 {
			fmt.Fprintf(&b, " (%s)", plural(t.CacheHits, "cache hit"))
		}
		b.WriteString("\n")
	}
	if t.RoutingSavedPico != 0 {
		// Against the models the calls asked for, at the tokens their
		// answers used.
		if t.RoutingSavedPico > 0 {
			fmt.Fprintf(&b, "  routing saved: %s against the models asked for\n", middleware.FormatPico(t.RoutingSavedPico))
		} else {
			fmt.Fprintf(&b, "  routing cost: %s more than the models asked for\n", middleware.FormatPico(-t.RoutingSavedPico))
		}
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
func callStory(c middleware.CallRecord) []string {
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
				est := ""
				if a.Estimated {
					est = ", estimated"
				}
				p += fmt.Sprintf(" [%d in, %d cached, %d out, %s%s]", a.Usage.InputTokens, a.Usage.CachedInputTokens, a.Usage.OutputTokens, middleware.FormatPico(a.CostPico), est)
			}
			parts[i] = fmt.Sprintf("%s in %s", p, a.Latency.Round(time.Millisecond))
		}
		out = append(out, fmt.Sprintf("%d attempts: %s", len(c.Attempts), strings.Join(parts, " → ")))
	} else if c.UsageEstimated() {
		out = append(out, "usage estimated: the provider reported none")
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
func toolStory(tools []middleware.ToolRecord, walls []time.Duration) string {
	byTurn := map[int][]middleware.ToolRecord{}
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

// ReportJSON renders the run report as JSON: the run's totals, one object
// per call and the totals per model (with the model's cache hits and what
// they saved, "cache_hits" and "saved_usd_pico", when it has some). A call billed, in part, an estimate
// rather than the provider's usage (middleware.Attempt.Estimated) has
// "usage_estimated": true, and each such attempt of billed_attempts
// "estimated": true; the run's "estimated_calls" counts those calls and
// "estimated_usd_pico" is what their estimated attempts cost.
func ReportJSON(r *middleware.Run) ([]byte, error) {
	type call struct {
		Seq         int              `json:"seq"`
		Model       string           `json:"model"`
		Requested   string           `json:"requested_model,omitempty"`
		Stage       middleware.Stage `json:"stage,omitempty"`
		Rule        string           `json:"rule,omitempty"`
		Cache       string           `json:"cache,omitempty"`
		CacheReason string           `json:"cache_reason,omitempty"`
		Input       int64            `json:"input_tokens"`
		Cached      int64            `json:"cached_input_tokens"`
		CachedShare float64          `json:"cached_share"`
		Output      int64            `json:"output_tokens"`
		Reasoning   int64            `json:"reasoning_tokens"`
		CostPico    int64            `json:"cost_usd_pico"`
		SavedPico   int64            `json:"saved_usd_pico,omitempty"`
		RoutedPico  int64            `json:"routing_saved_usd_pico,omitempty"`
		LatencyMs   float64          `json:"latency_ms"`
		Attempts    int              `json:"attempts"`
		Retries     int              `json:"retries,omitempty"`
		Final       bool             `json:"final_answer,omitempty"`
		ToolCalls   []string         `json:"tool_calls,omitempty"`
		Billed      []billed         `json:"billed_attempts,omitempty"`
		Estimated   bool             `json:"usage_estimated,omitempty"`
		Notes       []string         `json:"notes,omitempty"`
		Err         string           `json:"error,omitempty"`
		RateWaitMs  float64          `json:"rate_wait_ms,omitempty"`
		RateRefused int              `json:"rate_refusals,omitempty"`
	}
	type model struct {
		Calls     int   `json:"calls"`
		CacheHits int   `json:"cache_hits,omitempty"`
		Input     int64 `json:"input_tokens"`
		Cached    int64 `json:"cached_input_tokens"`
		Output    int64 `json:"output_tokens"`
		CostPico  int64 `json:"cost_usd_pico"`
		SavedPico int64 `json:"saved_usd_pico,omitempty"` // what its cache hits saved
	}
	t := r.Totals()
	out := struct {
		Run         string           `json:"run"`
		Calls       []call           `json:"calls"`
		Input       int64            `json:"input_tokens"`
		Output      int64            `json:"output_tokens"`
		CostPico    int64            `json:"cost_usd_pico"`
		SavedPico   int64            `json:"saved_usd_pico"`
		RoutedPico  int64            `json:"routing_saved_usd_pico"`
		CacheHits   int              `json:"cache_hits"`
		ToolCalls   int              `json:"tool_calls"`
		ToolMs      float64          `json:"tool_ms"`
		ToolWallMs  float64          `json:"tool_wall_ms,omitempty"`
		Artifacts   int              `json:"artifacts,omitempty"`
		ArtSaved    int64            `json:"artifact_saved_tokens,omitempty"`
		WallMs      float64          `json:"wall_ms"`
		RateWaitMs  float64          `json:"rate_wait_ms,omitempty"`
		RateRefused int              `json:"rate_refusals,omitempty"`
		EstCalls    int              `json:"estimated_calls,omitempty"`
		EstPico     int64            `json:"estimated_usd_pico,omitempty"`
		ByModel     map[string]model `json:"by_model"`
	}{EstCalls: t.EstimatedCalls, EstPico: t.EstimatedPico, RateWaitMs: ms(t.RateWait), RateRefused: t.RateRefusals, ToolWallMs: ms(t.ToolWall), Artifacts: t.Artifacts, ArtSaved: t.ArtifactSavedTokens, Run: r.ID(), Input: t.Usage.InputTokens, Output: t.Usage.OutputTokens, CostPico: t.CostPico,
		SavedPico: t.SavedPico, RoutedPico: t.RoutingSavedPico, CacheHits: t.CacheHits, ToolCalls: t.ToolCalls,
		ToolMs: ms(t.ToolTime), WallMs: ms(t.Wall), Calls: []call{}, ByModel: map[string]model{}}
	for name, m := range t.ByModel {
		out.ByModel[name] = model{Calls: m.Calls, CacheHits: m.CacheHits, Input: m.Usage.InputTokens, Cached: m.Usage.CachedInputTokens, Output: m.Usage.OutputTokens,
			CostPico: m.CostPico, SavedPico: m.SavedPico}
	}
	for _, c := range r.Calls() {
		e := ""
		if c.Err != nil {
			e = c.Err.Error()
		}
		out.Calls = append(out.Calls, call{Seq: c.Seq, Model: c.Model, Requested: c.RequestedModel, Stage: c.Stage,
			Rule: c.Rule, Cache: string(c.Cache), CacheReason: c.CacheReason, Input: c.Usage.InputTokens, Cached: c.Usage.CachedInputTokens, CachedShare: cachedShare(c.Usage),
			Output: c.Usage.OutputTokens, Reasoning: c.Usage.ReasoningTokens, CostPico: c.CostPico,
			SavedPico: c.SavedPico, RoutedPico: c.RoutingSavedPico, LatencyMs: ms(c.Latency), Attempts: len(c.Attempts), Retries: len(c.Retries), Final: c.Final,
			Billed: billedAttempts(c.Attempts), Estimated: c.UsageEstimated(), ToolCalls: c.ToolCalls, Notes: c.Notes, Err: e,
			RateWaitMs: ms(c.RateWait), RateRefused: c.RateRefusals})
	}
	return json.Marshal(out)
}

// cacheCell renders a call's cache status with its reason, if any
// ("miss", "bypass: request not deterministic").
func cacheCell(f middleware.CallFacts) string {
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
	// Estimated: the usage is an estimate (the provider reported none).
	Estimated bool   `json:"estimated,omitempty"`
	Err       string `json:"error,omitempty"`
}

func billedAttempts(as []middleware.Attempt) []billed {
	if len(as) < 2 { // one attempt: the call's own fields say it all
		return nil
	}
	out := make([]billed, len(as))
	for i, a := range as {
		out[i] = billed{Model: a.Model, Input: a.Usage.InputTokens, Cached: a.Usage.CachedInputTokens, Output: a.Usage.OutputTokens, CostPico: a.CostPico,
			Estimated: a.Estimated}
		if a.Err != nil {
			out[i].Err = a.Err.Error()
		}
	}
	return out
}

// cachedShare returns the share of u's input tokens that the provider read
// from its prompt cache, in [0,1]; 0 without input.
func cachedShare(u middleware.Usage) float64 {
	if u.InputTokens <= 0 {
		return 0
	}
	return float64(u.CachedInputTokens) / float64(u.InputTokens)
}

// cachedCell renders cached input tokens with their share of the input.
func cachedCell(u middleware.Usage) string {
	if u.CachedInputTokens == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (%.0f%%)", u.CachedInputTokens, 100*cachedShare(u))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
