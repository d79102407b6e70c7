package llmwrap

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tokenwise/tokenwise/llmwrap/breaker"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/llmwrap/cache"
	"github.com/tokenwise/tokenwise/llmwrap/compact"
	"github.com/tokenwise/tokenwise/llmwrap/instrument"
	"github.com/tokenwise/tokenwise/llmwrap/ratelimit"
	"github.com/tokenwise/tokenwise/llmwrap/route"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
	"github.com/tokenwise/tokenwise/tokens"
)

// Option configures Build with code-side things (observers, stores,
// loggers): never policy data.
type Option func(*options)

type options struct {
	observers    []middleware.Observer
	logger       *slog.Logger
	unknownTeams policies.UnknownTeams // for NewRegistry
	state        *State                // WithState; nil: every Build starts afresh

	// Per-layer code-side options.
	cacheStore     cache.Store
	budgetStore    budget.Store
	budgetOpts     []budget.Option
	rateLimitStore ratelimit.Store
	rateLimitOpts  []ratelimit.Option
	breakerStore   breaker.SharedStore
	routeOpts      []route.Option
	contextOpts    []compact.Option

	// Made by one Build and shared by its layers.
	tokens  *tokens.Estimator // see estimator
	catalog *catalog          // the policy's models, resolved once per name
	built   *budget.Budget    // see (*options).budget
	learned *learnedWeights   // routing.learned's weights, read once (see readLearned)
}

// WithObserver adds an observer of every event of the chain.
func WithObserver(obs middleware.Observer) Option {
	return func(o *options) { o.observers = append(o.observers, obs) }
}

// WithLogger sets the logger used for warnings (budget, store failures).
// Default: slog.Default().
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithUnknownTeams sets what a Registry does with a call whose team has no
// policy file, overriding the default policy's teams.unknown: warn (serve
// it under the default policy, warning once per team) or error (refuse it
// with an error matching policies.ErrUnknownTeam). Build ignores it.
func WithUnknownTeams(mode policies.UnknownTeams) Option {
	return func(o *options) { o.unknownTeams = mode }
}

// estimator returns the chain's shared token estimator.
func (o *options) estimator() *tokens.Estimator {
	if o.tokens == nil {
		o.tokens = tokens.New()
	}
	return o.tokens
}

// layer builds one layer of the chain from the policy; it returns nil when
// the policy leaves the layer off.
type layer func(p *policies.Policy, o *options) (middleware.Middleware, error)

// layers is the onion, outermost first (see the package doc).
var layers = []struct {
	name  string
	build layer
}{
	{"guard", guardLayer},
	{"total", totalLayer},
	{"cache", cacheLayer},
	{"route", routeLayer},
	{"context", contextLayer},
	{"fallback", fallbackLayer},
	{"budget", budgetLayer},
	{"ratelimit", rateLimitLayer},
	{"breaker", breakerLayer},
	{"retry", retryLayer},
	{"timeout", timeoutLayer},
}

// Build returns the middleware chain that enforces p. The policy must be
// valid (policies.Load validates; Build validates again for policies built
// in code). The result is safe for concurrent use.
func Build(p *policies.Policy, opts ...Option) (middleware.Middleware, error) {
	if p == nil {
		p = policies.Default()
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	o := &options{logger: slog.Default()}
	for _, opt := range opts {
		opt(o)
	}
	// The vocabulary is loaded now, not within the first call's deadline.
	tokens.Warm()
	// One estimator per chain (kept across reloads with a State): the
	// router, the context layer and the budget share its per-message memo,
	// and tokens.ForCall counts a call once for all of them.
	// The policy's catalog (encodings, image rules) resolves models.
	o.catalog = newCatalog(p) // one per chain: every layer's lookups share it
	o.catalog.log = o.logger
	o.tokens = o.state.sharedEstimator().WithModels(o.catalog.estimatorModel)
	if p.Routing.Learned.Weights != "" {
		l, err := readLearned(p)
		if err != nil {
			return nil, fmt.Errorf("tokenwise/llmwrap: building the route layer: %w", err)
		}
		o.learned = l
	}
	mws := []middleware.Middleware{instrument.New(o.catalog, middleware.Observers(o.observers...))}
	for _, l := range layers {
		mw, err := l.build(p, o)
		if err != nil {
			return nil, fmt.Errorf("tokenwise/llmwrap: building the %s layer: %w", l.name, err)
		}
		mws = append(mws, mw)
	}
	// Innermost, at the provider: the one record of each attempt and its
	// cost (run report, events, OpenTelemetry and replay read it).
	// An attempt it estimates (cut before its usage) is priced at the
	// tier the provider processed it at: the project's default when the
	// request names none, as the budget reserved it.
	mws = append(mws, middleware.Meter(o.catalog, budget.BilledUsageAt(o.estimator(), p.Budget.DefaultServiceTier)))
	return middleware.Chain(mws...), nil
}

// MustBuild is Build for policies known to be valid (tests, examples).
func MustBuild(p *policies.Policy, opts ...Option) middleware.Middleware {
	mw, err := Build(p, opts...)
	if err != nil {
		panic(err)
	}
	return mw
}

// Pricer prices usage with the policy's models over the embedded catalog.
// It is a middleware.AnswerPricer: an answer is billed at the model that
// answered when its price is known, except that a price the policy itself
// gives the model asked for (policies.Policy.OwnsPrice: a deployment's
// contract price) wins over the embedded catalog's price of the answer's
// name.
func Pricer(p *policies.Policy) middleware.Pricer {
	return newCatalog(p)
}

// TokenCounts converts core usage to the policies package's counts (the
// one conversion: Pricer and Catalog use it).
func TokenCounts(u middleware.Usage) policies.TokenCounts {
	return policies.TokenCounts{Input: u.InputTokens, Output: u.OutputTokens, CachedInput: u.CachedInputTokens,
		CacheWrite: u.CacheWriteTokens, Reasoning: u.ReasoningTokens, AudioInput: u.AudioInputTokens, AudioOutput: u.AudioOutputTokens,
		ServiceTier: u.ServiceTier}
}

// Catalog returns the policy's model catalog (the embedded one overlaid
// with the policy's models:) as the budget layer's Catalog: prices and
// each model's context window and output limit.
func Catalog(p *policies.Policy) budget.Catalog { return newCatalog(p) }

// catalog resolves model names in a policy's catalog (the embedded one
// overlaid with the policy's models:) once per name: a lookup (two maps,
// a prefix scan for a dated snapshot, the overlay of the policy's fields)
// would otherwise run several times per call, for the budget, the Meter
// and the estimator. Up to maxResolved names are remembered; further
// names are resolved on every use. The policy must not change after it
// is given (Build's contract).
type catalog struct {
	p        *policies.Policy
	resolved sync.Map // model name -> *resolvedModel
	n        atomic.Int64
	// recent holds the last remembered names resolved, by a hash of the
	// name: a call resolves its model four or five times (estimator,
	// budget, Meter), and a compare of the name is cheaper than the map's
	// hash and lookup.
	recent [8]atomic.Pointer[resolvedModel]

	// log gets the warnings of a model without a price, once per model,
	// and of a service tier without a price, once per model and tier (up
	// to maxResolved of them, in tiersWarned: a model's own with tier "");
	// nil: slog.Default().
	log         *slog.Logger
	tiersWarned sync.Map // modelTier -> struct{}
	nTiers      atomic.Int64
}

// modelTier is a model and a service tier it was billed at.
type modelTier struct{ model, tier string }

// maxResolved bounds the names a catalog remembers, so that callers
// naming ever new models (a gateway's clients) cannot grow it.
const maxResolved = 1024

// resolvedModel is one name's entry in the catalog, in the forms its
// users read.
type resolvedModel struct {
	name   string // the catalog's own copy; "" when not remembered
	spec   policies.ModelSpec
	ok     bool
	owns   bool // the policy itself prices the name (policies.Policy.OwnsPrice)
	budget budget.Model
	tokens tokens.Model
}

func newCatalog(p *policies.Policy) *catalog { return &catalog{p: p} }

var _ middleware.AnswerPricer = (*catalog)(nil)

// resolve returns what the catalog says of name.
func (c *catalog) resolve(name string) *resolvedModel {
	slot := &c.recent[recentSlot(name)]
	if r := slot.Load(); r != nil && r.name == name {
		return r
	}
	if v, ok := c.resolved.Load(name); ok {
		r := v.(*resolvedModel)
		slot.Store(r)
		return r
	}
	spec, ok := c.p.Model(name)
	r := &resolvedModel{spec: spec, ok: ok, owns: ok && c.p.OwnsPrice(name)}
	if ok {
		r.budget = budget.Model{Priced: spec.HasPrice(), ContextWindow: spec.ContextWindow, MaxOutputTokens: spec.MaxOutputTokens,
			OutputPico: int64(spec.OutputPer1M), AudioOutputPico: int64(spec.AudioOutputPer1M),
			InputPico: int64(spec.InputPer1M), CacheWritePico: int64(spec.CacheWritePer1M), AnswerModels: c.p.AnswerModels(name)}
		r.tokens = tokens.Model{Encoding: spec.Encoding, ImageLow: spec.Image.WorstCase("low"), ImageHigh: spec.Image.WorstCase("high")}
	}
	if c.n.Load() < maxResolved {
		// The name may be a piece of a large request body: keep a copy.
		r.name = strings.Clone(name)
		v, loaded := c.resolved.LoadOrStore(r.name, r)
		if !loaded {
			c.n.Add(1)
		}
		r = v.(*resolvedModel)
		slot.Store(r)
	}
	return r
}

// recentSlot picks name's slot in catalog.recent.
func recentSlot(name string) int {
	if name == "" {
		return 0
	}
	return (len(name)*5 + int(name[len(name)-1])) & 7
}

func (c *catalog) Cost(model string, u middleware.Usage) (int64, bool) {
	r := c.resolve(model)
	if !r.ok || !r.budget.Priced {
		if !u.IsZero() {
			c.unpricedModel(model)
		}
		return 0, false
	}
	if u.ServiceTier == "auto" {
		// An answer that names no processing tier but the project's (see
		// middleware.Usage.WithServiceTier): billed at the project's
		// default tier, as such a call was reserved.
		u.ServiceTier = c.p.Budget.DefaultServiceTier
	}
	if t := u.ServiceTier; !policies.StandardTier(t) {
		if _, ok := r.spec.ServiceTiers[t]; !ok {
			c.unpricedTier(model, t)
		}
	}
	return int64(r.spec.Cost(TokenCounts(u))), true // exact pico-USD
}

// BilledModel is the catalog's rule of which model an answer is billed as
// (middleware.BilledModel): the model that answered when its price is
// known, unless the policy itself prices the model asked for (a
// deployment's contract price) and not the answer's name, whose price then
// comes from the embedded catalog alone.
func (c *catalog) BilledModel(requested, answered string) string {
	if answered == "" || answered == requested {
		return requested
	}
	a := c.resolve(answered)
	switch {
	case !a.ok || !a.budget.Priced:
		return requested
	case a.owns:
		return answered
	case c.resolve(requested).owns:
		return requested
	}
	return answered
}

// unpricedTier warns, once per model and tier, that usage billed at a
// service tier the catalog has no rates for on model is priced at 2.5
// times the model's standard rates when the tier is a premium one
// (policies.ModelSpec.Rates: never below the provider's bill), else at
// the standard rates (a flex: above the bill). After maxResolved pairs, further ones
// are not logged (a server naming ever new tiers cannot grow the set).
func (c *catalog) unpricedTier(model, tier string) {
	k := modelTier{model, tier}
	if _, ok := c.tiersWarned.Load(k); ok || c.nTiers.Load() >= maxResolved {
		return
	}
	k = modelTier{strings.Clone(model), strings.Clone(tier)}
	if _, loaded := c.tiersWarned.LoadOrStore(k, struct{}{}); loaded {
		return
	}
	c.nTiers.Add(1)
	priced := "priced at the model's standard rates"
	if policies.PremiumTier(k.tier) {
		priced = "priced as its dearest (2.5 times the model's standard rates, or its dearest priced tier)"
	}
	c.logger().Warn("tokenwise: usage billed at a service tier the catalog has no price for on its model: "+priced+"; "+
		"add the tier's rates under the model's service_tiers in the policy's models:", "model", k.model, "service_tier", k.tier)
}

// unpricedModel warns, once per model (up to maxResolved of them), that
// usage of model, which neither the catalog nor the policy prices (a
// local model, another server's, one newer than the catalog), costs an
// unknown amount, reported as $0 in the run report, events and metrics.
func (c *catalog) unpricedModel(model string) {
	k := modelTier{model: model}
	if _, ok := c.tiersWarned.Load(k); ok || c.nTiers.Load() >= maxResolved {
		return
	}
	k.model = strings.Clone(model)
	if _, loaded := c.tiersWarned.LoadOrStore(k, struct{}{}); loaded {
		return
	}
	c.nTiers.Add(1)
	c.logger().Warn("tokenwise: model has no price in the catalog or the policy: its calls cost an unknown amount, reported as $0; "+
		"give it its prices under the policy's models: (input_per_1m, output_per_1m), or free: true for a local model", "model", k.model)
}

func (c *catalog) logger() *slog.Logger {
	if c.log == nil {
		return slog.Default()
	}
	return c.log
}

func (c *catalog) Model(name string) (budget.Model, bool) {
	r := c.resolve(name)
	return r.budget, r.ok
}

// EstimatorModels resolves models for a token estimator from p's catalog
// (the embedded one overlaid with p's models:): the tokenizer encoding —
// a policy's encoding: takes effect — and the model family's worst-case
// image tokens. A model the catalog does not know falls back to the
// estimator's own tables.
func EstimatorModels(p *policies.Policy) tokens.ModelFunc {
	return newCatalog(p).estimatorModel
}

func (c *catalog) estimatorModel(model string) (tokens.Model, bool) {
	r := c.resolve(model)
	return r.tokens, r.ok
}
