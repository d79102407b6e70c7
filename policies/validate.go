package policies

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	pathpkg "path"
	"regexp"
	"slices"
	"strings"
)

// Validate checks the policy's meaning and returns every problem at once
// as a *ValidationError (nil when the policy is valid). Problems name their
// field path and, for a loaded policy, file:line:col.
//
// It checks: the version; that every model referenced (routing default and
// rules, regenerate_final, cascade, larger_window, budget.downgrade_to,
// fallback, context.summary_model) is in the catalog or in models; that a
// USD budget has a price for every model that may be used; regular
// expressions; fractions in (0,1]; impossible thresholds; negative numbers;
// enumeration values; period and window of the team budget; duplicate
// fallback models (a cycle) and other duplicates.
func (p *Policy) Validate() error {
	probs := p.problems(nil)
	if len(probs) == 0 {
		return nil
	}
	sortProblems(probs)
	return &ValidationError{Problems: probs}
}

type checker struct {
	p      *Policy
	probs  []Problem
	used   []modelUse // models that may serve a call, in schema order
	failed []string   // paths whose value failed to decode
}

type modelUse struct{ path, name string }

// problems returns the policy's semantic problems, unsorted. decodeProbs
// are the problems of decoding it: a check that reads a value that failed
// to decode (and so holds its zero value) is skipped, lest it report a
// problem the file does not have — max_usd: "1,000" is reported once, not
// also as a period "set but no team limit". A problem at or below a failed
// path is left to the caller (shadowed).
func (p *Policy) problems(decodeProbs []Problem) []Problem {
	c := &checker{p: p}
	for _, dp := range decodeProbs {
		if dp.Path != "" {
			c.failed = append(c.failed, dp.Path)
		}
	}
	c.version()
	c.models()
	c.limits()
	c.budget()
	c.cache()
	c.routing()
	c.fallback()
	c.rateLimits()
	c.tools()
	c.context()
	c.enum("observability.log_level", string(p.Observability.LogLevel), LogDebug, LogInfo, LogWarn, LogError)
	c.enum("teams.unknown", string(p.Teams.Unknown), UnknownTeamsWarn, UnknownTeamsError)
	c.prices()
	return c.probs
}

// decoded reports whether the values at paths decoded: none of them
// failed, sits inside a value that failed (budget.team given as a string)
// or holds a value that failed (routing.rules[0].when holding a stage
// given as a list, or a misspelt key). A check that reads a value beside
// the one it reports on runs only when its inputs decoded.
func (c *checker) decoded(paths ...string) bool {
	for _, f := range c.failed {
		for _, p := range paths {
			if under(p, f) || under(f, p) {
				return false
			}
		}
	}
	return true
}

func (c *checker) add(path, format string, args ...any) {
	pr := Problem{Path: path, Msg: fmt.Sprintf(format, args...)}
	if s := c.p.src; s != nil {
		pr.File = s.file
		if pos, ok := s.locate(path); ok {
			pr.Line, pr.Column = pos.line, pos.col
			if f := s.fileOf(path); f != "" {
				pr.File = f
			}
		}
	}
	c.probs = append(c.probs, pr)
}

func (c *checker) nonNeg(path string, v int64) {
	if v < 0 {
		c.add(path, "must not be negative, got %d", v)
	}
}

func (c *checker) nonNegUSD(path string, v USD) {
	if v < 0 {
		c.add(path, "must not be negative, got %s", v)
	}
}

func (c *checker) nonNegDur(path string, v Duration) {
	if v < 0 {
		c.add(path, "must not be negative, got %s", v)
	}
}

// fraction checks f in (0,1]; zero is allowed when optional.
func (c *checker) fraction(path string, f float64, optional bool) {
	if optional && f == 0 {
		return
	}
	if !(f > 0 && f <= 1) {
		c.add(path, "must be a fraction in (0,1], got %g", f)
	}
}

// enum checks that v is empty or one of allowed.
func (c *checker) enum(path, v string, allowed ...any) {
	if v == "" {
		return
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = fmt.Sprint(a)
		if names[i] == v {
			return
		}
	}
	c.add(path, "invalid value %q: want %s%s", clip(v), orList(names), suggest(v, names))
}

func orList(names []string) string {
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// model checks that a referenced model is known and records its use.
func (c *checker) model(path, name string) {
	if name == "" {
		return
	}
	spec, ok := c.p.Model(name)
	if !ok {
		names := slices.Collect(maps.Keys(defaultCatalog().models))
		for k := range c.p.Models {
			names = append(names, k)
		}
		slices.Sort(names)
		hint := suggest(name, names)
		if hint == "" {
			// A model of another server (a local one): declared under
			// models: it is known, priced or free.
			hint = " (declare it under models: with its input_per_1m and output_per_1m, or free: true for a local model)"
		}
		c.add(path, "unknown model %q: not in the price catalog nor in models%s", clip(name), hint)
		return
	}
	if spec.Embeddings {
		c.add(path, "model %q is an embeddings model: it cannot answer a chat call", clip(name))
		return
	}
	c.used = append(c.used, modelUse{path, name})
}

// modelList checks a list of models: each known, none twice.
func (c *checker) modelList(path string, names []string, dupMsg string) {
	seen := map[string]int{}
	for i, m := range names {
		ip := indexPath(path, i)
		if m == "" {
			c.add(ip, "empty model name")
			continue
		}
		if j, dup := seen[m]; dup {
			c.add(ip, "model %q is already listed at %s%s", clip(m), indexPath(path, j), dupMsg)
			continue
		}
		seen[m] = i
		c.model(ip, m)
	}
}

func (c *checker) version() {
	switch c.p.Version {
	case Version:
	case 0:
		c.add("version", "version is required: add version: %d", Version)
	default:
		c.add("version", "unsupported version %d: this build reads version %d", c.p.Version, Version)
	}
}

func (c *checker) models() {
	for _, name := range slices.Sorted(maps.Keys(c.p.Models)) {
		m := c.p.Models[name]
		path := keyPath("models", name)
		c.nonNegUSD(joinPath(path, "input_per_1m"), m.InputPer1M)
		c.nonNegUSD(joinPath(path, "output_per_1m"), m.OutputPer1M)
		c.nonNegUSD(joinPath(path, "cached_input_per_1m"), m.CachedInputPer1M)
		c.nonNegUSD(joinPath(path, "cache_write_per_1m"), m.CacheWritePer1M)
		c.nonNegUSD(joinPath(path, "audio_input_per_1m"), m.AudioInputPer1M)
		c.nonNegUSD(joinPath(path, "audio_output_per_1m"), m.AudioOutputPer1M)
		c.nonNegUSD(joinPath(path, "request_fee"), m.RequestFee)
		c.nonNeg(joinPath(path, "context_window"), m.ContextWindow)
		c.nonNeg(joinPath(path, "max_output_tokens"), m.MaxOutputTokens)
		c.enum(joinPath(path, "encoding"), m.Encoding, "o200k_base", "cl100k_base", "p50k_base", "r50k_base")
		c.nonNeg(joinPath(path, "image.base"), m.Image.Base)
		c.nonNeg(joinPath(path, "image.tile"), m.Image.Tile)
		c.nonNeg(joinPath(path, "image.patch"), m.Image.Patch)
		c.longContext(joinPath(path, "long_context"), m.LongContext)
		for _, tier := range slices.Sorted(maps.Keys(m.ServiceTiers)) {
			c.serviceTier(keyPath(joinPath(path, "service_tiers"), tier), tier, m.ServiceTiers[tier])
		}
		for _, tool := range slices.Sorted(maps.Keys(m.ToolCalls)) {
			c.nonNegUSD(keyPath(joinPath(path, "tool_calls"), tool), m.ToolCalls[tool])
		}
		if c.decoded(path) && m.Free && (m.InputPer1M != 0 || m.OutputPer1M != 0 || m.CachedInputPer1M != 0 || m.CacheWritePer1M != 0 || m.RequestFee != 0 ||
			m.LongContext != (LongContextPrices{}) || len(m.ServiceTiers) > 0) {
			c.add(joinPath(path, "free"), "free is set together with prices: keep one")
		}
		if spec, _ := c.p.Model(name); spec.ContextWindow > 0 && spec.MaxOutputTokens > spec.ContextWindow {
			c.add(joinPath(path, "max_output_tokens"), "max_output_tokens (%d) exceeds context_window (%d)", spec.MaxOutputTokens, spec.ContextWindow)
		}
		c.used = append(c.used, modelUse{path, name})
	}
}

// longContext checks a long-context rule: a threshold with at least one
// rate, or nothing.
func (c *checker) longContext(path string, l LongContextPrices) {
	c.nonNeg(joinPath(path, "above_input_tokens"), l.AboveInputTokens)
	c.nonNegUSD(joinPath(path, "input_per_1m"), l.InputPer1M)
	c.nonNegUSD(joinPath(path, "cached_input_per_1m"), l.CachedInputPer1M)
	c.nonNegUSD(joinPath(path, "cache_write_per_1m"), l.CacheWritePer1M)
	c.nonNegUSD(joinPath(path, "output_per_1m"), l.OutputPer1M)
	rated := l.InputPer1M != 0 || l.CachedInputPer1M != 0 || l.CacheWritePer1M != 0 || l.OutputPer1M != 0
	switch {
	case !c.decoded(path):
	case rated && l.AboveInputTokens == 0:
		c.add(joinPath(path, "above_input_tokens"), "long_context sets rates but no threshold: add above_input_tokens (e.g. 200000)")
	case !rated && l.AboveInputTokens != 0:
		c.add(path, "long_context sets a threshold but no rate: add input_per_1m, cached_input_per_1m, cache_write_per_1m or output_per_1m")
	}
}

// serviceTier checks the rates of one processing tier.
func (c *checker) serviceTier(path, name string, t ServiceTierPrices) {
	switch name {
	case "", "auto", "default":
		c.add(path, "%q is not a tier to price: the standard rates are the model's own (input_per_1m, output_per_1m); "+
			"list the other tiers (flex, priority, scale)", clip(name))
		return
	}
	c.nonNegUSD(joinPath(path, "input_per_1m"), t.InputPer1M)
	c.nonNegUSD(joinPath(path, "cached_input_per_1m"), t.CachedInputPer1M)
	c.nonNegUSD(joinPath(path, "cache_write_per_1m"), t.CacheWritePer1M)
	c.nonNegUSD(joinPath(path, "output_per_1m"), t.OutputPer1M)
	c.longContext(joinPath(path, "long_context"), t.LongContext)
	if t == (ServiceTierPrices{}) && c.decoded(path) {
		c.add(path, "service tier %q sets no rate: add input_per_1m, cached_input_per_1m, cache_write_per_1m or output_per_1m", clip(name))
	}
}

func (c *checker) limits() {
	l, t := c.p.Limits, c.p.Timeouts
	c.nonNeg("limits.max_calls", int64(l.MaxCalls))
	c.nonNegDur("limits.run_timeout", l.RunTimeout)
	c.nonNegDur("timeouts.call", t.Call)
	c.nonNegDur("timeouts.total", t.Total)
	c.nonNegDur("timeouts.first_token", t.FirstToken)
	c.nonNegDur("timeouts.idle", t.Idle)
	c.nonNegDur("timeouts.tool", t.Tool)
	if total, call := t.Total.Duration(), t.Call.Duration(); total > 0 && call > 0 && total < call {
		c.add("timeouts.total", "%s is shorter than timeouts.call (%s): the total bounds a call with all its attempts, each of which timeouts.call bounds: raise it, or set it to 0 for none", t.Total, t.Call)
	}
	for i, m := range t.Models {
		path := indexPath("timeouts.models", i)
		if len(m.Match) == 0 && c.decoded(joinPath(path, "match")) {
			c.add(joinPath(path, "match"), "is required: the names or path.Match patterns of the models the entry is for")
		}
		for j, name := range m.Match {
			if _, err := pathpkg.Match(name, ""); err != nil || strings.TrimSpace(name) == "" {
				c.add(indexPath(joinPath(path, "match"), j), "%q is not a model name or a path.Match pattern", clip(name))
			}
		}
		c.nonNegDur(joinPath(path, "call"), m.Call)
		c.nonNegDur(joinPath(path, "total"), m.Total)
		c.nonNegDur(joinPath(path, "first_token"), m.FirstToken)
		c.nonNegDur(joinPath(path, "idle"), m.Idle)
		if m.Call == 0 && m.Total == 0 && m.FirstToken == 0 && m.Idle == 0 && c.decoded(path) {
			c.add(path, "sets no limit: add call, total, first_token or idle")
		}
		call := cmp.Or(m.Call, t.Call)
		if total := m.Total.Duration(); total > 0 && call > 0 && total < call.Duration() {
			c.add(joinPath(path, "total"), "%s is shorter than the entry's call timeout (%s): the total bounds a call with all its attempts: raise it, or leave it out to have it raised to the call timeout", m.Total, call)
		}
	}
}

func (c *checker) budget() {
	b := c.p.Budget
	c.nonNeg("budget.request.max_input_tokens", b.Request.MaxInputTokens)
	c.nonNeg("budget.request.max_output_tokens", b.Request.MaxOutputTokens)
	c.nonNeg("budget.run.max_tokens", b.Run.MaxTokens)
	c.nonNegUSD("budget.run.max_usd", b.Run.MaxUSD)
	c.nonNeg("budget.run.max_calls", int64(b.Run.MaxCalls))
	c.nonNegDur("budget.run.max_wall_time", b.Run.MaxWallTime)

	t := b.Team
	c.nonNegUSD("budget.team.max_usd", t.MaxUSD)
	c.nonNeg("budget.team.max_tokens", t.MaxTokens)
	c.nonNegDur("budget.team.window", t.Window)
	c.enum("budget.team.period", string(t.Period), PeriodDaily, PeriodMonthly, PeriodRolling)
	hasTeamLimit := t.MaxUSD != 0 || t.MaxTokens != 0
	switch {
	case !c.decoded("budget.team"):
		// a limit, the period or the window failed to decode: their
		// relations are unknown.
	case hasTeamLimit && t.Period == "":
		c.add("budget.team.period", "required when a team limit is set: daily, monthly or rolling")
	case !hasTeamLimit && t.Period != "":
		c.add("budget.team.period", "period %q is set but no team limit: set max_usd or max_tokens", clip(string(t.Period)))
	}
	switch {
	case !c.decoded("budget.team"):
	case t.Period == PeriodRolling && t.Window == 0:
		c.add("budget.team.window", "required for period rolling, e.g. 24h")
	case t.Window != 0 && t.Period != PeriodRolling && t.Period != "":
		c.add("budget.team.window", "window only applies to period rolling; period %q has a fixed length", clip(string(t.Period)))
	case t.Window != 0 && t.Period == "" && hasTeamLimit:
		// already reported: period required.
	case t.Window != 0 && t.Period == "":
		c.add("budget.team.window", "window needs period: rolling")
	}

	c.enum("budget.on_exceed", string(b.OnExceed), OnExceedReject, OnExceedDowngrade, OnExceedWarn)
	switch {
	case !c.decoded("budget.on_exceed", "budget.downgrade_to"):
	case b.OnExceed == OnExceedDowngrade && b.DowngradeTo == "":
		c.add("budget.downgrade_to", "required when on_exceed is downgrade")
	case b.OnExceed != OnExceedDowngrade && b.DowngradeTo != "":
		c.add("budget.downgrade_to", "is set but on_exceed is %q: set on_exceed: downgrade or remove it", clip(cmpOr(string(b.OnExceed), string(OnExceedReject))))
	}
	c.model("budget.downgrade_to", b.DowngradeTo)
	seen := map[float64]bool{}
	for i, f := range b.WarnAt {
		c.fraction(indexPath("budget.warn_at", i), f, false)
		if seen[f] {
			c.add(indexPath("budget.warn_at", i), "%g is listed twice", f)
		}
		seen[f] = true
	}
	c.nonNeg("budget.min_output_tokens", b.MinOutputTokens)
	if t := b.DefaultServiceTier; t != "" && !tierName.MatchString(t) {
		c.add("budget.default_service_tier", "%q is not a service tier's name (lowercase letters and _, at most 32: default, flex, priority, scale, ...)", clip(t))
	}
	s := b.Store
	c.store("budget.store", s.Kind, s.OnUnavailable, s.LocalFraction)
	c.nonNegDur("budget.store.reservation_ttl", s.ReservationTTL)
	if ttl, call := s.ReservationTTL.Duration(), c.p.Timeouts.Call.Duration(); ttl > 0 && call > 0 && ttl < call {
		c.add("budget.store.reservation_ttl", "%s is shorter than timeouts.call (%s): a reservation must outlive the call it holds money for", s.ReservationTTL, c.p.Timeouts.Call)
	} else if longest := c.p.Timeouts.MaxCall(); ttl > 0 && ttl < longest.Duration() {
		i := slices.IndexFunc(c.p.Timeouts.Models, func(m ModelTimeouts) bool { return m.Call == longest })
		c.add("budget.store.reservation_ttl", "%s is shorter than timeouts.models[%d].call (%s): a reservation must outlive the call it holds money for", s.ReservationTTL, i, longest)
	}
}

// store checks what the budget's and the rate limits' stores share: the
// kind and the reaction to an unreachable store.
func (c *checker) store(path string, kind StoreKind, on OnUnavailable, localFraction float64) {
	c.enum(joinPath(path, "kind"), string(kind), StoreMemory, StoreRedis)
	c.enum(joinPath(path, "on_unavailable"), string(on), UnavailableFailClosed, UnavailableLocal)
	c.fraction(joinPath(path, "local_fraction"), localFraction, true)
	if localFraction != 0 && on != UnavailableLocal && c.decoded(joinPath(path, "on_unavailable")) {
		c.add(joinPath(path, "local_fraction"), "only applies with on_unavailable: local")
	}
}

// rates checks the per-minute limits and the concurrency cap that a
// model's rate limit and a team's share both set.
func (c *checker) rates(path string, rpm, tpm int64, maxConcurrent int) {
	c.nonNeg(joinPath(path, "rpm"), rpm)
	c.nonNeg(joinPath(path, "tpm"), tpm)
	c.nonNeg(joinPath(path, "max_concurrent"), int64(maxConcurrent))
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (c *checker) cache() {
	k := c.p.Cache
	c.nonNegDur("cache.ttl", k.TTL)
	c.nonNeg("cache.max_entries", int64(k.MaxEntries))
	c.nonNeg("cache.max_bytes", int64(k.MaxBytes))
	c.enum("cache.scope", string(k.Scope), CacheScopeTeam, CacheScopeGlobal)
	c.enum("cache.store", string(k.Store), StoreMemory, StoreRedis)
}

func (c *checker) routing() {
	r := c.p.Routing
	c.model("routing.default", r.Default)
	names := map[string]int{}
	catchAll := -1
	for i, rule := range r.Rules {
		rp := indexPath("routing.rules", i)
		if rule.Name != "" {
			if j, dup := names[rule.Name]; dup {
				c.add(joinPath(rp, "name"), "rule name %q is already used by %s", clip(rule.Name), indexPath("routing.rules", j))
			} else {
				names[rule.Name] = i
			}
		}
		if catchAll >= 0 {
			c.add(rp, "unreachable: %s has no conditions and matches every call", indexPath("routing.rules", catchAll))
		} else if rule.When.IsZero() && c.decoded(joinPath(rp, "when")) {
			catchAll = i
		}
		if rule.Model == "" {
			c.add(joinPath(rp, "model"), "required: the model this rule routes to")
		}
		c.model(joinPath(rp, "model"), rule.Model)
		c.condition(joinPath(rp, "when"), rule.When)
	}

	rf := r.RegenerateFinal
	c.model("routing.regenerate_final.model", rf.Model)
	if rf.Enabled && rf.Model == "" && r.Default == "" && c.decoded("routing.regenerate_final", "routing.default") {
		c.add("routing.regenerate_final.model", "required when enabled and routing.default is empty")
	}

	cs := r.Cascade
	if len(cs.Models) == 1 && c.decoded("routing.cascade.models") {
		c.add("routing.cascade.models", "a cascade needs at least two models, cheapest first")
	}
	if len(cs.Models) == 0 && len(cs.Checks) > 0 && c.decoded("routing.cascade.models") {
		c.add("routing.cascade.checks", "checks are set but cascade.models is empty")
	}
	c.modelList("routing.cascade.models", cs.Models, "")
	for i, ch := range cs.Checks {
		c.enum(indexPath("routing.cascade.checks", i), string(ch), CheckValidToolJSON, CheckNonEmpty, CheckFinishReason)
	}
	c.modelList("routing.larger_window", r.LargerWindow, "")
	c.learned(r)
}

// tierName is what a service tier's name may be (see
// Budget.DefaultServiceTier; the schema carries the same pattern).
var tierName = regexp.MustCompile(`^[a-z_]{1,32}$`)

func (c *checker) learned(r Routing) {
	l := r.Learned
	if l.IsZero() {
		return
	}
	if l.Weights == "" {
		c.add("routing.learned.weights", "required: the weights file written by tokenwise route train")
	}
	if l.Threshold < 0 || l.Threshold > 1 || math.IsNaN(l.Threshold) {
		c.add("routing.learned.threshold", "%v not in [0,1] (0: the threshold stored in the weights file)", l.Threshold)
	}
	c.model("routing.learned.strong", l.Strong)
	if l.Strong == "" && r.Default == "" && c.decoded("routing.default") {
		c.add("routing.learned.strong", "required when routing.default is empty")
	}
	if l.Weak == "" {
		c.add("routing.learned.weak", "required: the model of calls scoring below the threshold")
	}
	c.model("routing.learned.weak", l.Weak)
	if strong := cmp.Or(l.Strong, r.Default); l.Weak != "" && l.Weak == strong {
		c.add("routing.learned.weak", "the same model as the strong one (%q)", clip(strong))
	}
}

func (c *checker) condition(path string, w Condition) {
	c.enum(joinPath(path, "stage"), string(w.Stage), StageToolSelection, StageResultAnalysis, StageFinalAnswer)
	for i, k := range w.Keywords {
		if strings.TrimSpace(k) == "" {
			c.add(indexPath(joinPath(path, "keywords"), i), "empty keyword")
		}
	}
	c.enum(joinPath(path, "keywords_in"), string(w.KeywordsIn), KeywordsInLastUser, KeywordsInConversation)
	if w.KeywordsIn != "" && len(w.Keywords) == 0 && w.Regex == "" && c.decoded(joinPath(path, "keywords"), joinPath(path, "regex")) {
		c.add(joinPath(path, "keywords_in"), "is set but neither keywords nor regex is")
	}
	if w.Regex != "" {
		if _, err := regexp.Compile(w.Regex); err != nil {
			c.add(joinPath(path, "regex"), "invalid regex: %v", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
	}
	for i, m := range w.RequestedModel {
		if _, err := pathpkg.Match(m, ""); err != nil || strings.TrimSpace(m) == "" {
			c.add(indexPath(joinPath(path, "requested_model"), i), "%q is not a model name or a path.Match pattern", clip(m))
		}
	}
	c.nonNeg(joinPath(path, "min_input_tokens"), w.MinInputTokens)
	c.nonNeg(joinPath(path, "max_input_tokens"), w.MaxInputTokens)
	if w.MinInputTokens > 0 && w.MaxInputTokens > 0 && w.MinInputTokens > w.MaxInputTokens {
		c.add(joinPath(path, "min_input_tokens"), "min_input_tokens (%d) is greater than max_input_tokens (%d): the rule can never match", w.MinInputTokens, w.MaxInputTokens)
	}
	if bb := w.BudgetBelow; bb != nil {
		bp := joinPath(path, "budget_below")
		c.enum(joinPath(bp, "scope"), string(bb.Scope), BudgetScopeRun, BudgetScopeTeam)
		c.fraction(joinPath(bp, "fraction"), bb.Fraction, false)
		b := c.p.Budget
		switch {
		case !c.decoded(joinPath(bp, "scope")):
			// which budget it looks at is unknown.
		case bb.Scope == BudgetScopeRun || bb.Scope == "":
			if b.Run.MaxUSD == 0 && b.Run.MaxTokens == 0 && c.decoded("budget.run.max_usd", "budget.run.max_tokens") {
				c.add(bp, "looks at the run budget, but budget.run sets neither max_usd nor max_tokens")
			}
		case bb.Scope == BudgetScopeTeam:
			if b.Team.MaxUSD == 0 && b.Team.MaxTokens == 0 && c.decoded("budget.team.max_usd", "budget.team.max_tokens") {
				c.add(bp, "looks at the team budget, but budget.team sets neither max_usd nor max_tokens")
			}
		}
	}
}

func (c *checker) fallback() {
	f := c.p.Fallback
	c.modelList("fallback.models", f.Models, ": each model is visited once (a repeat would be a cycle)")
	for i, on := range f.On {
		c.enum(indexPath("fallback.on", i), string(on), ClassRateLimited, ClassUnavailable, ClassTimeout, ClassNetwork,
			ClassContextWindow, ClassBudget, ClassContentFilter, ClassAuth, ClassBadRequest)
	}
	r := f.Retry
	c.nonNeg("fallback.retry.max_attempts", int64(r.MaxAttempts))
	c.nonNegDur("fallback.retry.base_delay", r.BaseDelay)
	c.nonNegDur("fallback.retry.max_delay", r.MaxDelay)
	c.nonNegDur("fallback.retry.max_total_wait", r.MaxTotalWait)
	if r.BaseDelay > 0 && r.MaxDelay > 0 && r.BaseDelay > r.MaxDelay {
		c.add("fallback.retry.base_delay", "base_delay (%s) is greater than max_delay (%s)", r.BaseDelay, r.MaxDelay)
	}
	br := f.Breaker
	c.nonNeg("fallback.breaker.consecutive_failures", int64(br.ConsecutiveFailures))
	c.fraction("fallback.breaker.failure_ratio", br.FailureRatio, true)
	c.nonNeg("fallback.breaker.min_requests", int64(br.MinRequests))
	c.nonNegDur("fallback.breaker.open_for", br.OpenFor)
	c.nonNeg("fallback.breaker.half_open_probes", int64(br.HalfOpenProbes))
	c.nonNegDur("fallback.breaker.window", br.Window)
	h := f.Hedge
	c.nonNegDur("fallback.hedge.delay", h.Delay)
	if h.Percentile != 0 && !(h.Percentile > 0 && h.Percentile < 100) {
		c.add("fallback.hedge.percentile", "must be in (0,100), e.g. 95, got %g", h.Percentile)
	}
	if h.Enabled && c.decoded("fallback.hedge") {
		if h.Delay == 0 && h.Percentile == 0 {
			c.add("fallback.hedge", "enabled without delay or percentile: set one")
		}
	}
}

func (c *checker) tools() {
	t := c.p.Tools
	c.nonNeg("tools.max_parallel", int64(t.MaxParallel))
	c.nonNegDur("tools.timeout", t.Timeout)
	c.enum("tools.on_error", string(t.OnError), ToolErrorObserve, ToolErrorFail)
	c.nonNegDur("tools.cache_ttl", t.CacheTTL)
	a := t.Artifacts
	c.nonNeg("tools.artifacts.threshold_bytes", int64(a.ThresholdBytes))
	c.nonNeg("tools.artifacts.threshold_tokens", a.ThresholdTokens)
	c.nonNeg("tools.artifacts.head_lines", int64(a.HeadLines))
	c.nonNeg("tools.artifacts.tail_lines", int64(a.TailLines))
	c.nonNeg("tools.artifacts.max_bytes", int64(a.MaxBytes))
	c.enum("tools.artifacts.store", string(a.Store), StoreMemory, StoreDir, StoreRedis)
	switch {
	case !c.decoded("tools.artifacts.store", "tools.artifacts.dir"):
	case a.Store == StoreDir && a.Dir == "":
		c.add("tools.artifacts.dir", "required for store dir")
	case a.Store != StoreDir && a.Dir != "":
		c.add("tools.artifacts.dir", "only applies to store dir")
	}
	for _, name := range slices.Sorted(maps.Keys(t.PerTool)) {
		c.nonNegDur(joinPath(keyPath("tools.per_tool", name), "timeout"), t.PerTool[name].Timeout)
	}
}

func (c *checker) context() {
	x := c.p.Context
	c.nonNeg("context.max_input_tokens", x.MaxInputTokens)
	c.fraction("context.window_fraction", x.WindowFraction, true)
	c.nonNeg("context.keep_last_turns", int64(x.KeepLastTurns))
	c.nonNeg("context.offload_over_bytes", int64(x.OffloadOverBytes))
	c.nonNeg("context.block_size", int64(x.BlockSize))
	seen := map[ContextStrategy]bool{}
	for i, s := range x.Strategies {
		ip := indexPath("context.strategies", i)
		c.enum(ip, string(s), StrategyOffload, StrategyDrop, StrategySummarise)
		if seen[s] {
			c.add(ip, "strategy %q is listed twice", clip(string(s)))
		}
		seen[s] = true
		if s == StrategySummarise && x.SummaryModel == "" && c.p.Routing.Default == "" && c.decoded("context.summary_model", "routing.default") {
			c.add(ip, "summarise needs context.summary_model or routing.default")
		}
	}
	c.model("context.summary_model", x.SummaryModel)
}

// prices reports, when a USD budget is set, every model that may serve a
// call without a known price: its cost would silently count as $0.
func (c *checker) prices() {
	b := c.p.Budget
	var budgetPath string
	switch {
	case b.Run.MaxUSD > 0:
		budgetPath = "budget.run.max_usd"
	case b.Team.MaxUSD > 0:
		budgetPath = "budget.team.max_usd"
	default:
		return
	}
	seen := map[string]bool{}
	for _, u := range c.used {
		if seen[u.name] {
			continue
		}
		seen[u.name] = true
		mp := keyPath("models", u.name)
		if spec, ok := c.p.Model(u.name); ok && !spec.HasPrice() && c.decoded(mp) {
			c.add(u.path, "%s is set but model %q has no price: add %s/output_per_1m (or free: true)",
				budgetPath, clip(u.name), joinPath(mp, "input_per_1m"))
		}
	}
}
