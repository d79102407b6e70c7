package llmwrap

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"

	"time"

	"github.com/tokenwise/tokenwise/llmwrap/breaker"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/llmwrap/cache"
	"github.com/tokenwise/tokenwise/llmwrap/compact"
	"github.com/tokenwise/tokenwise/llmwrap/fallback"
	"github.com/tokenwise/tokenwise/llmwrap/guard"
	"github.com/tokenwise/tokenwise/llmwrap/ratelimit"
	"github.com/tokenwise/tokenwise/llmwrap/retry"
	"github.com/tokenwise/tokenwise/llmwrap/route"
	"github.com/tokenwise/tokenwise/llmwrap/timeout"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
	"github.com/tokenwise/tokenwise/tokens"
	"github.com/tokenwise/tokenwise/toolwrap"
)

// This file is the one place that maps a policy to the layers' configs:
// each layer package takes its own plain Config and never reads a policy.

// timeoutConfig maps policy.timeouts (its limits for a model no
// timeouts.models entry matches).
func timeoutConfig(p *policies.Policy) timeout.Config { return limitsConfig(p.Timeouts) }

// limitsConfig maps one set of timeouts (the policy's, or those
// policies.Timeouts.For resolves for a model).
func limitsConfig(t policies.Timeouts) timeout.Config {
	return timeout.Config{Call: t.Call.Duration(), FirstToken: t.FirstToken.Duration(), Idle: t.Idle.Duration(), Total: t.Total.Duration()}
}

// guardConfig maps policy.limits and budget.run's max_calls and
// max_wall_time: the smaller non-zero value of the two places a policy can
// set each wins.
func guardConfig(p *policies.Policy) guard.Config {
	l := guard.Config{MaxCalls: p.Limits.MaxCalls, RunTimeout: p.Limits.RunTimeout.Duration()}
	if n := p.Budget.Run.MaxCalls; n > 0 && (l.MaxCalls == 0 || n < l.MaxCalls) {
		l.MaxCalls = n
	}
	if d := p.Budget.Run.MaxWallTime.Duration(); d > 0 && (l.RunTimeout == 0 || d < l.RunTimeout) {
		l.RunTimeout = d
	}
	return l
}

// RunLimits returns the run limits policy p sets: its call limit and its
// deadline from the run's start (0: none), each the smaller non-zero of
// limits (max_calls, run_timeout) and budget.run (max_calls,
// max_wall_time), as the run guard holds them.
func RunLimits(p *policies.Policy) (maxCalls int, runTimeout time.Duration) {
	g := guardConfig(p)
	return g.MaxCalls, g.RunTimeout
}

// retryConfig maps policy.fallback.retry.
func retryConfig(p *policies.Policy) retry.Config {
	r := p.Fallback.Retry
	return retry.Config{
		MaxAttempts:  r.MaxAttempts,
		BaseDelay:    r.BaseDelay.Duration(),
		MaxDelay:     r.MaxDelay.Duration(),
		MaxTotalWait: r.MaxTotalWait.Duration(),
	}
}

// breakerConfig maps policy.fallback.breaker.
func breakerConfig(p *policies.Policy) breaker.Config {
	b := p.Fallback.Breaker
	return breaker.Config{
		ConsecutiveFailures: b.ConsecutiveFailures,
		FailureRatio:        b.FailureRatio,
		MinRequests:         b.MinRequests,
		OpenFor:             b.OpenFor.Duration(),
		HalfOpenProbes:      b.HalfOpenProbes,
		Window:              b.Window.Duration(),
	}
}

// windows returns each model's context window from the policy's model
// specs (0: unknown), for route.WithWindows and fallback.WithWindows.
func windows(p *policies.Policy) func(model string) int64 {
	return func(model string) int64 {
		spec, _ := p.Model(model)
		return spec.ContextWindow
	}
}

// maxOutputs returns each model's maximum output from the policy's model
// specs (0: unknown), for route.WithMaxOutput and fallback.WithMaxOutput.
func maxOutputs(p *policies.Policy) func(model string) int64 {
	return func(model string) int64 {
		spec, _ := p.Model(model)
		return spec.MaxOutputTokens
	}
}

// fallbackConfig maps policy.fallback (models, on, hedge) and
// routing.larger_window; context windows come from the model specs
// (windows, given as fallback.WithWindows). An
// open breaker and a rate limit's on_limit fallback always move on; a rate
// limit's reject never does.
func fallbackConfig(p *policies.Policy) fallback.Config {
	f := p.Fallback
	classes := f.On
	if len(classes) == 0 {
		classes = policies.DefaultFallbackOn()
	}
	on := []error{breaker.ErrOpen, ratelimit.ErrMoveOn}
	for _, c := range classes {
		on = append(on, classErrors(c)...)
	}
	cfg := fallback.Config{
		Models:       f.Models,
		On:           on,
		Stop:         []error{ratelimit.ErrRejected},
		LargerWindow: p.Routing.LargerWindow,
	}
	if h := f.Hedge; h.Enabled {
		cfg.Hedge = fallback.Hedge{Delay: h.Delay.Duration(), Percentile: h.Percentile}
	}
	if f.NeverDearer {
		cfg.Allow = func(requested, candidate string) bool { return notDearer(p, requested, candidate) }
	}
	return cfg
}

// notDearer reports whether candidate's input and output prices are at
// most requested's, both priced in p (fallback.never_dearer).
func notDearer(p *policies.Policy, requested, candidate string) bool {
	r, ok1 := p.Model(requested)
	c, ok2 := p.Model(candidate)
	if !ok1 || !ok2 || !r.HasPrice() || !c.HasPrice() {
		return false
	}
	in := policies.TokenCounts{Input: 1_000_000}
	out := policies.TokenCounts{Output: 1_000_000}
	return c.Cost(in) <= r.Cost(in) && c.Cost(out) <= r.Cost(out) && c.RequestFee <= r.RequestFee
}

// cacheConfig maps policy.cache (its store and bounds are the cache
// layer's business in layer_cache.go).
func cacheConfig(p *policies.Policy, o *options) cache.Config {
	c := p.Cache
	return cache.Config{
		TTL:               c.TTL.Duration(),
		Global:            c.Scope == policies.CacheScopeGlobal,
		DeterministicOnly: c.DeterministicOnly,
		FailClosed:        c.FailClosed,
		NoStreams:         !c.CachesStreams(),
		Variant:           answerVariant(p, o.learnedDigest()),
	}
}

// answerVariant is the cache's Config.Variant under p: a digest of the
// sections whose layers sit below the cache and decide which model
// answers a request and what it is sent (models, routing, context,
// fallback), so that a cached answer is never served by a chain that
// would route the same request otherwise (a reloaded policy, another
// team under a global cache). Equal sections, equal variant: in every
// process.
//
// weights is the digest of the learned router's weights file (its
// bytes, not its name: a retrained file routes otherwise).
func answerVariant(p *policies.Policy, weights string) string {
	b, err := json.Marshal(struct {
		Models   map[string]policies.ModelSpec
		Routing  policies.Routing
		Context  policies.ContextPolicy
		Fallback policies.Fallback
		Weights  string `json:",omitempty"`
	}{p.Models, p.Routing, p.Context, p.Fallback, weights})
	if err != nil {
		// Cannot happen (plain data); a variant of its own then, which
		// shares nothing.
		b = fmt.Appendf(nil, "%p", p)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// compactConfig maps policy.context; the summaries are written by
// context.summary_model, or routing.default without one.
func compactConfig(p *policies.Policy) compact.Config {
	x := p.Context
	cfg := compact.Config{
		MaxInputTokens:   x.MaxInputTokens,
		WindowFraction:   x.WindowFraction,
		KeepLastTurns:    x.KeepLastTurns,
		OffloadOverBytes: int(x.OffloadOverBytes),
		BlockSize:        x.BlockSize,
		SummaryModel:     x.SummaryModel,
	}
	if cfg.SummaryModel == "" {
		cfg.SummaryModel = p.Routing.Default
	}
	for _, s := range x.Strategies {
		cfg.Strategies = append(cfg.Strategies, compact.Strategy(s))
	}
	return cfg
}

// rateLimitConfig maps policy.rate_limits (rate_limits.reserve_output is
// Config.ReserveOutput, rate_limits.teams Config.Teams; its store kind is
// the layer's business in layer_ratelimit.go).
func rateLimitConfig(p *policies.Policy) ratelimit.Config {
	r := p.RateLimits
	cfg := ratelimit.Config{
		OnLimit:       ratelimit.OnLimit(r.OnLimit),
		MaxWait:       r.MaxWait.Duration(),
		ReserveOutput: r.ReserveOutput,
		NoLearning:    !r.IsLearning(),
		KeyPrefix:     r.Store.KeyPrefix,
		LeaseTTL:      r.Store.LeaseTTL.Duration(),
		OnUnavailable: ratelimit.OnUnavailable(r.Store.OnUnavailable),
		LocalFraction: r.Store.LocalFraction,
	}
	if len(r.Models) > 0 {
		cfg.Models = make(map[string]ratelimit.ModelLimit, len(r.Models))
		for name, m := range r.Models {
			cfg.Models[name] = ratelimit.ModelLimit{RPM: m.RPM, TPM: m.TPM, MaxConcurrent: m.MaxConcurrent, Burst: m.Burst.Duration()}
		}
	}
	if len(r.Teams) > 0 {
		cfg.Teams = make(map[string]ratelimit.TeamShare, len(r.Teams))
		for name, t := range r.Teams {
			cfg.Teams[name] = ratelimit.TeamShare{Weight: t.Weight, RPM: t.RPM, TPM: t.TPM, MaxConcurrent: t.MaxConcurrent}
		}
	}
	return cfg
}

// budgetConfig maps policy.budget (budget.min_output_tokens is
// Config.MinOutputTokens, on_exceed/downgrade_to/warn_at OnExceed,
// DowngradeTo and WarnAt; its store kind is the layer's business in
// layer_budget.go; run.max_calls and run.max_wall_time are the run
// guard's). A reservation lives at least as long as the longest call
// timeout (timeouts.call or one of timeouts.models).
func budgetConfig(p *policies.Policy) budget.Config {
	b := p.Budget
	ttl := b.Store.ReservationTTL.Duration()
	if ttl <= 0 {
		ttl = max(budget.DefaultReservationTTL, p.Timeouts.MaxCall().Duration())
	}
	return budget.Config{
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
		DefaultTier:     b.DefaultServiceTier,
		KeyPrefix:       b.Store.KeyPrefix,
		ReservationTTL:  ttl,
		OnUnavailable:   budget.OnUnavailable(b.Store.OnUnavailable),
		LocalFraction:   b.Store.LocalFraction,
	}
}

// toolsConfig maps policy.tools (its artifacts: artifactConfig): the tool
// timeout is tools.timeout, else timeouts.tool.
func toolsConfig(p *policies.Policy) toolwrap.Config {
	t := p.Tools
	cfg := toolwrap.Config{
		MaxParallel: t.MaxParallel,
		Timeout:     t.Timeout.Duration(),
		FailOnError: t.OnError == policies.ToolErrorFail,
		CacheTTL:    t.CacheTTL.Duration(),
	}
	_, cfg.RunTimeout = RunLimits(p) // the run's deadline holds for its tools too
	if cfg.Timeout == 0 {
		cfg.Timeout = p.Timeouts.Tool.Duration()
	}
	if len(t.PerTool) > 0 {
		cfg.Meta = make(map[string]toolwrap.Meta, len(t.PerTool))
		for name, s := range t.PerTool {
			cfg.Meta[name] = toolwrap.Meta{SideEffects: s.SideEffects, Idempotent: s.Idempotent, Timeout: s.Timeout.Duration()}
		}
	}
	return cfg
}

// artifactConfig maps policy.tools.artifacts (its store: NewExecutor).
func artifactConfig(p *policies.Policy) toolwrap.ArtifactConfig {
	a := p.Tools.Artifacts
	return toolwrap.ArtifactConfig{ThresholdBytes: int(a.ThresholdBytes), ThresholdTokens: a.ThresholdTokens,
		HeadLines: a.HeadLines, TailLines: a.TailLines}
}

// routeConfig maps policy.routing, its learned weights path resolved
// against the policy file (WeightsPath), and budget.run's limits, which
// budget_below conditions of the run scope read.
func routeConfig(p *policies.Policy) route.Config {
	rt := p.Routing
	cfg := route.Config{
		Default:         rt.Default,
		RegenerateFinal: route.Regenerate{Enabled: rt.RegenerateFinal.Enabled, Model: rt.RegenerateFinal.Model},
		Cascade:         route.Cascade{Models: rt.Cascade.Models},
		LargerWindow:    rt.LargerWindow,
		RunLimit:        route.RunLimit{USDMicros: p.Budget.Run.MaxUSD.Micro(), Tokens: p.Budget.Run.MaxTokens},
	}
	for _, c := range rt.Cascade.Checks {
		cfg.Cascade.Checks = append(cfg.Cascade.Checks, route.CheckName(c))
	}
	if l := rt.Learned; !l.IsZero() {
		cfg.Learned = route.Learned{Weights: WeightsPath(p), Threshold: l.Threshold, Strong: l.Strong, Weak: l.Weak}
	}
	for _, r := range rt.Rules {
		w := r.When
		c := route.Condition{
			Stage:          middleware.Stage(w.Stage),
			Keywords:       w.Keywords,
			KeywordsIn:     route.KeywordScope(w.KeywordsIn),
			Regex:          w.Regex,
			MinInputTokens: w.MinInputTokens,
			MaxInputTokens: w.MaxInputTokens,
			HasTools:       w.HasTools,
			Team:           w.Team,
			RequestedModel: w.RequestedModel,
		}
		if b := w.BudgetBelow; b != nil {
			c.BudgetBelow = &route.BudgetBelow{Scope: route.BudgetScope(b.Scope), Fraction: b.Fraction}
		}
		cfg.Rules = append(cfg.Rules, route.Rule{Name: r.Name, Model: r.Model, When: c})
	}
	return cfg
}

// NewBudget returns the budget layer of p's budget section, mapped as Build
// maps it, priced by p's catalog and counting with an estimator that knows
// p's models; opts come after those (a store, a clock, a logger). Use it
// where a budget is needed outside a chain Build made (a spend endpoint, a
// test). A nil p is the default policy.
func NewBudget(p *policies.Policy, opts ...budget.Option) (*budget.Budget, error) {
	if p == nil {
		p = policies.Default()
	}
	base := []budget.Option{budget.WithCatalog(Catalog(p)), budget.WithEstimator(budgetEstimator().WithModels(EstimatorModels(p)))}
	return budget.New(budgetConfig(p), append(base, opts...)...)
}

// budgetEstimator is the estimator NewBudget's budgets and
// NewRateLimiter's limiters share (each with its policy's models): a
// budget made per request — a gateway's /v1/spend — costs no estimator's
// tables of its own (1.6 MB).
var budgetEstimator = sync.OnceValue(func() *tokens.Estimator { return tokens.New() })

// NewRateLimiter returns the rate limiter of p's rate_limits, with the
// estimator of p's models, for calls made outside a chain (a gateway's
// pass-through). Give it the store the chains use (ratelimit.WithStore,
// the store given to WithRateLimitStore) so that both count against the
// same limits.
func NewRateLimiter(p *policies.Policy, opts ...ratelimit.Option) (*ratelimit.Limiter, error) {
	if p == nil {
		p = policies.Default()
	}
	base := []ratelimit.Option{ratelimit.WithEstimator(budgetEstimator().WithModels(EstimatorModels(p)))}
	return ratelimit.New(rateLimitConfig(p), append(base, opts...)...)
}

// AnswerVariant is the digest of what decides the answer to a request
// below a response cache under p — its models, routing (with the bytes of
// its learned weights as the directory loader read them:
// policies.Policy.WeightsDigest), context and fallback sections — that the
// chain's cache keys its answers on. A cache kept outside the chain (the
// gateway's Responses cache) keys on it too, so that no answer is served
// under a policy that would have routed the request otherwise.
func AnswerVariant(p *policies.Policy) string { return answerVariant(p, p.WeightsDigest()) }

// learnedDigest is the digest of the learned weights Build read, "" without.
func (o *options) learnedDigest() string {
	if o.learned == nil {
		return ""
	}
	return o.learned.digest
}
