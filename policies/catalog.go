package policies

import (
	"cmp"
	_ "embed"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
)

// CatalogDate is the date of the list prices in the embedded catalog.
const CatalogDate = "2026-12-06"

//go:embed catalog.yaml
var catalogYAML []byte

// catalogFile is the shape of catalog.yaml.
type catalogFile struct {
	Date   string               `yaml:"date"`
	Models map[string]ModelSpec `yaml:"models"`
}

type catalog struct {
	date   string
	models map[string]ModelSpec
	byLen  []string // names, longest first, for prefix lookup
}

// defaultCatalog parses the embedded catalog once. It is immutable after
// that; a broken catalog is a bug caught by the package tests.
var defaultCatalog = sync.OnceValue(func() *catalog {
	var f catalogFile
	src := &sourceMap{file: "catalog.yaml", pos: map[string]position{}}
	if probs, _ := decodeDocument(catalogYAML, &f, src); len(probs) > 0 {
		sortProblems(probs)
		panic("tokenwise/policies: embedded catalog.yaml: " + (&ValidationError{Problems: probs}).Error())
	}
	c := &catalog{date: f.Date, models: f.Models, byLen: slices.Collect(maps.Keys(f.Models))}
	slices.SortFunc(c.byLen, func(a, b string) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return cmp.Compare(a, b)
	})
	return c
})

// DefaultCatalog returns a copy of the embedded price catalog: list prices
// as of CatalogDate for OpenAI, Anthropic and Google models, keyed by model
// name. Policies override and extend it under models:.
func DefaultCatalog() map[string]ModelSpec {
	return maps.Clone(defaultCatalog().models)
}

// lookup finds name in the catalog exactly, else the longest key that name
// is a snapshot of (isModelPrefix). It returns the length of the matched key.
func (c *catalog) lookup(name string) (ModelSpec, int, bool) {
	if m, ok := c.models[name]; ok {
		return m, len(name), true
	}
	for _, k := range c.byLen {
		if isModelPrefix(k, name) {
			return c.models[k], len(k), true
		}
	}
	return ModelSpec{}, 0, false
}

// lookupModels is lookup over a policy's models map.
func lookupModels(models map[string]ModelSpec, name string) (ModelSpec, int, bool) {
	if m, ok := models[name]; ok {
		return m, len(name), true
	}
	best, bestLen := "", 0
	for k := range models {
		if len(k) > bestLen && isModelPrefix(k, name) || len(k) == bestLen && k < best && isModelPrefix(k, name) {
			best, bestLen = k, len(k)
		}
	}
	if bestLen == 0 {
		return ModelSpec{}, 0, false
	}
	return models[best], bestLen, true
}

// isModelPrefix reports whether name is a dated or versioned snapshot of
// key: key, a separator ('-', '_', '@', ':'), then only version-like parts
// separated by '-', '_', '.', '@' or ':' — numbers, "v" plus a number,
// "latest", "preview" or "exp" — but not a bare number of one or two
// digits first, which is a minor version, a model of its own. So
// "gpt-4o-2024-08-06", "claude-sonnet-4@20250514" and
// "gemini-2.5-flash-preview-05-20" match their base model, while
// "gpt-4o-mini-2024-07-18" matches gpt-4o-mini and not gpt-4o, and an
// unknown variant such as "o3-pro", or "claude-opus-5-5" (Claude Opus 5.5,
// at a price of its own), matches nothing rather than being priced as
// o3 or claude-opus-5.
func isModelPrefix(key, name string) bool {
	if len(key) == 0 || len(name) <= len(key)+1 || name[:len(key)] != key {
		return false
	}
	switch name[len(key)] {
	case '-', '_', '@', ':':
	default:
		return false
	}
	rest := name[len(key)+1:]
	first := rest
	if i := strings.IndexAny(rest, "-_.@:"); i >= 0 {
		first = rest[:i]
	}
	if first != "" && len(first) <= 2 && allDigits(first) {
		return false // a minor version: claude-opus-4-6 is no claude-opus-4
	}
	for rest != "" {
		i := strings.IndexAny(rest, "-_.@:")
		tok := rest
		if i >= 0 {
			tok, rest = rest[:i], rest[i+1:]
		} else {
			rest = ""
		}
		if !versionToken(tok) {
			return false
		}
	}
	return true
}

func versionToken(t string) bool {
	switch t {
	case "", "latest", "preview", "exp":
		return true
	}
	if t[0] == 'v' && len(t) > 1 {
		t = t[1:]
	}
	return allDigits(t)
}

// Model returns the spec of the named model: the catalog entry of the name
// (exact, else the longest catalog name it is a dated or versioned
// snapshot of, e.g. "gpt-4o-2024-08-06" → gpt-4o), overlaid with the
// policy's models entry of the same or a more specific name, whose non-zero
// fields win (a zero field keeps the catalog's value). A name neither
// knows that has a router's prefix ("openai/gpt-4o") is the model after
// its last '/'. A name neither knows as written is read in lower case
// ("GPT-4o-2024-05-13", as Azure names it, is gpt-4o-2024-05-13). It
// reports false when neither knows the model. Model may be called on a
// nil *Policy to read the catalog alone. It does not allocate for a name
// in the catalog's case.
func (p *Policy) Model(name string) (ModelSpec, bool) {
	if m, ok := p.modelAs(name); ok {
		return m, true
	}
	if lower := strings.ToLower(name); lower != name {
		return p.modelAs(lower)
	}
	return ModelSpec{}, false
}

// priceName returns the name Model prices name as: name itself when the
// catalog or the policy knows it (whole, as a snapshot, or after a
// router's prefix), else its lower case when that is known — providers
// and routers match model names in any case (Azure answers
// "GPT-4o-2024-05-13"), the catalog's names are lower case — else name.
func (p *Policy) priceName(name string) string {
	if _, ok := p.modelAs(name); ok {
		return name
	}
	if lower := strings.ToLower(name); lower != name {
		if _, ok := p.modelAs(lower); ok {
			return lower
		}
	}
	return name
}

// modelAs is Model without the case folding of priceName.
func (p *Policy) modelAs(name string) (ModelSpec, bool) {
	if m, ok := p.model(name); ok {
		return m, true
	}
	// A router's name for a provider's model (OpenRouter's
	// "openai/gpt-4o", LiteLLM's "anthropic/claude-sonnet-4-5"): the
	// provider's model, at its list price, when neither knows the name
	// itself.
	if i := strings.LastIndexByte(name, '/'); i >= 0 && i < len(name)-1 {
		return p.model(name[i+1:])
	}
	return ModelSpec{}, false
}

// model is Model without the router prefix.
func (p *Policy) model(name string) (ModelSpec, bool) {
	base, baseLen, baseOK := defaultCatalog().lookup(name)
	if p != nil && len(p.Models) > 0 {
		over, overLen, ok := lookupModels(p.Models, name)
		if ok && (!baseOK || overLen >= baseLen) {
			if baseOK {
				return mergeSpec(base, over), true
			}
			return over, true
		}
	}
	return base, baseOK
}

// OwnsPrice reports whether the policy itself prices the named model: the
// models: entry that Model overlays for the name (of the same name, or the
// most specific one the name is a snapshot of, when it is at least as
// specific as the catalog's) gives a price — Free, an input or output
// price or a request fee — rather than the embedded catalog alone. A
// deployment's contract price is such a price: a call asking for the
// name is billed at it whatever catalog model the provider names in its
// answer (see llmwrap.Pricer). False on a nil *Policy.
func (p *Policy) OwnsPrice(name string) bool {
	if p == nil || len(p.Models) == 0 {
		return false
	}
	name = p.priceName(name)
	if _, ok := p.model(name); !ok {
		// A router's name for a provider's model, as Model reads it.
		if i := strings.LastIndexByte(name, '/'); i >= 0 && i < len(name)-1 {
			name = name[i+1:]
		}
	}
	_, baseLen, baseOK := defaultCatalog().lookup(name)
	over, overLen, ok := lookupModels(p.Models, name)
	return ok && (!baseOK || overLen >= baseLen) && over.HasPrice()
}

// mergeSpec overlays the non-zero fields of over on base.
func mergeSpec(base, over ModelSpec) ModelSpec {
	overlay(&base.Provider, over.Provider)
	overlay(&base.InputPer1M, over.InputPer1M)
	overlay(&base.OutputPer1M, over.OutputPer1M)
	overlay(&base.CachedInputPer1M, over.CachedInputPer1M)
	overlay(&base.CacheWritePer1M, over.CacheWritePer1M)
	overlay(&base.AudioInputPer1M, over.AudioInputPer1M)
	overlay(&base.AudioOutputPer1M, over.AudioOutputPer1M)
	overlay(&base.ContextWindow, over.ContextWindow)
	overlay(&base.MaxOutputTokens, over.MaxOutputTokens)
	overlay(&base.Encoding, over.Encoding)
	overlay(&base.Image, over.Image)
	overlay(&base.Free, over.Free)
	overlay(&base.LongContext, over.LongContext)
	overlay(&base.RequestFee, over.RequestFee)
	overlay(&base.Embeddings, over.Embeddings)
	if len(over.ServiceTiers) > 0 {
		// The policy's tiers replace the catalog's of the same name.
		tiers := make(map[string]ServiceTierPrices, len(base.ServiceTiers)+len(over.ServiceTiers))
		maps.Copy(tiers, base.ServiceTiers)
		maps.Copy(tiers, over.ServiceTiers)
		base.ServiceTiers = tiers
	}
	if len(over.ToolCalls) > 0 {
		// The policy's fees replace the catalog's of the same tool.
		fees := make(map[string]USD, len(base.ToolCalls)+len(over.ToolCalls))
		maps.Copy(fees, base.ToolCalls)
		maps.Copy(fees, over.ToolCalls)
		base.ToolCalls = fees
	}
	return base
}

// overlay sets *dst to v unless v is its type's zero value.
func overlay[T comparable](dst *T, v T) {
	var zero T
	if v != zero {
		*dst = v
	}
}

// TokenCounts is the token usage of one call, normalised the OpenAI way.
// The core package has its own Usage type; adapters convert.
type TokenCounts struct {
	// Input counts every input (prompt) token, including CachedInput and
	// CacheWrite. (Anthropic reports these three separately: add them up.)
	Input int64
	// Output counts every output token, including Reasoning.
	Output int64
	// CachedInput counts input tokens read from the provider's prompt cache.
	CachedInput int64
	// CacheWrite counts input tokens written to the provider's prompt cache.
	CacheWrite int64
	// Reasoning counts the output tokens spent on hidden reasoning. They are
	// already part of Output and billed at the output rate; the field is
	// informational and does not change Cost.
	Reasoning int64
	// AudioInput counts the input tokens that were audio (part of Input).
	AudioInput int64
	// AudioOutput counts the output tokens that were audio (part of Output).
	AudioOutput int64
	// ServiceTier is the processing tier the tokens were billed at
	// ("flex", "priority", ...; "" or "default": the standard rates). See
	// ModelSpec.ServiceTiers.
	ServiceTier string
}

// Cost prices u at m's rates, exactly, in pico-dollars:
//
//	(Input − CachedInput − CacheWrite − AudioInput) × InputPer1M
//	+ CachedInput × CachedInputPer1M (InputPer1M when zero)
//	+ CacheWrite × CacheWritePer1M (InputPer1M when zero)
//	+ AudioInput × AudioInputPer1M (InputPer1M when zero)
//	+ (Output − AudioOutput) × OutputPer1M
//	+ AudioOutput × AudioOutputPer1M (OutputPer1M when zero)
//	+ RequestFee (u is one request's)
//
// with each rate read as pico-dollars per token (micro-dollars per million
// tokens): no term is rounded. The input, cached input, cache write and
// output rates are those of u's service tier when m prices it (ServiceTiers), and those
// of its long-context rule when u's input is above the rule's threshold
// (Rates). Reasoning tokens are part of Output. Negative counts count as
// zero, CachedInput and CacheWrite are capped at Input, and the result
// saturates instead of overflowing. (Audio tokens read from a cache count
// as cached.) A model without a price costs $0: check HasPrice first.
func (m ModelSpec) Cost(u TokenCounts) PicoUSD {
	in := max(u.Input, 0)
	cached := min(max(u.CachedInput, 0), in)
	write := min(max(u.CacheWrite, 0), in-cached)
	audioIn := min(max(u.AudioInput, 0), in-cached-write)
	out := max(u.Output, 0)
	audioOut := min(max(u.AudioOutput, 0), out)
	r := m.Rates(u.ServiceTier, in)
	c := times(in-cached-write-audioIn, r.InputPer1M)
	c = c.Add(times(cached, or(r.CachedInputPer1M, r.InputPer1M)))
	c = c.Add(times(write, or(r.CacheWritePer1M, r.InputPer1M)))
	c = c.Add(times(audioIn, or(m.AudioInputPer1M, r.InputPer1M)))
	c = c.Add(times(out-audioOut, r.OutputPer1M))
	c = c.Add(times(audioOut, or(m.AudioOutputPer1M, r.OutputPer1M)))
	c = c.Add(max(m.RequestFee, 0).Pico())
	return c
}

// Rates returns the input, cached input, cache write and output rates of a call
// processed at tier with input tokens of input: m's own, overlaid with
// the tier's when ServiceTiers has it ("", "default" and "auto" are m's
// own), then with the long-context rule's (the tier's own rule when it has
// one, else m's) when input is above its threshold. A zero rate of an
// overlay keeps the rate below it. A premium tier ServiceTiers does not
// have ("priority", "fast", "ultrafast", "performance": PremiumTier) is
// never priced below what the provider may bill: at 2.5 times m's own
// rates, or at the dearest tier m prices when it is dearer. Any other tier
// it does not have — a flex (cheaper), another provider's name of its
// standard tier (Groq's "on_demand", Vertex's "standard") — is priced at
// m's own rates.
func (m ModelSpec) Rates(tier string, input int64) Rates {
	if _, priced := m.ServiceTiers[tier]; priced || !PremiumTier(tier) {
		return m.tierRates(tier, input)
	}
	// A tier m has no rates for (a priority its catalog entry lacks, a
	// tier name the catalog does not know): its price is unknown, and
	// never billed below what the provider may bill — the standard rates
	// times 2.5 (unpriced: the dearest tier of the catalog, gpt-5.5's
	// priority, is 2.5 times its standard rates), or the dearest tier m
	// prices, per rate, when it is dearer still.
	r := m.tierRates("", input).resolved()
	r.InputPer1M, r.CachedInputPer1M, r.CacheWritePer1M, r.OutputPer1M =
		unpriced(r.InputPer1M), unpriced(r.CachedInputPer1M), unpriced(r.CacheWritePer1M), unpriced(r.OutputPer1M)
	for t := range m.ServiceTiers {
		d := m.tierRates(t, input).resolved()
		r.InputPer1M, r.CachedInputPer1M = max(r.InputPer1M, d.InputPer1M), max(r.CachedInputPer1M, d.CachedInputPer1M)
		r.CacheWritePer1M, r.OutputPer1M = max(r.CacheWritePer1M, d.CacheWritePer1M), max(r.OutputPer1M, d.OutputPer1M)
	}
	return r
}

// resolved is r with its zero cached input and cache write rates made the
// input rate they stand for (as Cost reads them), for comparing rates.
func (r Rates) resolved() Rates {
	r.CachedInputPer1M, r.CacheWritePer1M = or(r.CachedInputPer1M, r.InputPer1M), or(r.CacheWritePer1M, r.InputPer1M)
	return r
}

// StandardTier reports whether tier names the standard processing tier:
// none, OpenAI's "default" (and "auto", the project's own), Groq's
// "on_demand", Vertex's "standard".
func StandardTier(tier string) bool {
	switch tier {
	case "", "default", "auto", "on_demand", "standard":
		return true
	}
	return false
}

// PremiumTier reports whether tier names a processing tier dearer than the
// standard one: OpenAI's "priority" (and the "fast" and "ultrafast" some
// gateways sell), Groq's "performance". A model that has no rates for such
// a tier is priced at 2.5 times its standard rates there (ModelSpec.Rates).
func PremiumTier(tier string) bool {
	switch tier {
	case "priority", "fast", "ultrafast", "performance":
		return true
	}
	return false
}

// unpriced is rate at a service tier its model has no rates for
// (ModelSpec.Rates): times 5/2, rounded up to a micro-dollar per million
// tokens (saturating) — at least the dearest tier the catalog prices
// (gpt-5.5's priority, 2.5 times its standard rates), so that such a call
// is never billed, nor reserved, below what the provider bills
// (TestUnpricedTierFactorCoversTheCatalog). A policy that knows the
// tier's price lists it under the model's service_tiers.
func unpriced(rate USD) USD {
	if rate <= 0 {
		return rate
	}
	if rate > math.MaxInt64/5 {
		return math.MaxInt64
	}
	return (rate*5 + 1) / 2
}

// tierRates is Rates of a tier m prices, or of the standard rates.
func (m ModelSpec) tierRates(tier string, input int64) Rates {
	r := Rates{InputPer1M: m.InputPer1M, CachedInputPer1M: m.CachedInputPer1M, CacheWritePer1M: m.CacheWritePer1M, OutputPer1M: m.OutputPer1M}
	long := m.LongContext
	if t, ok := m.ServiceTiers[tier]; ok && tier != "" {
		overlay(&r.InputPer1M, t.InputPer1M)
		overlay(&r.CachedInputPer1M, t.CachedInputPer1M)
		overlay(&r.CacheWritePer1M, t.CacheWritePer1M)
		overlay(&r.OutputPer1M, t.OutputPer1M)
		if t.LongContext.AboveInputTokens > 0 {
			long = t.LongContext
		}
	}
	if long.AboveInputTokens > 0 && input > long.AboveInputTokens {
		overlay(&r.InputPer1M, long.InputPer1M)
		overlay(&r.CachedInputPer1M, long.CachedInputPer1M)
		overlay(&r.CacheWritePer1M, long.CacheWritePer1M)
		overlay(&r.OutputPer1M, long.OutputPer1M)
	}
	return r
}

func or(rate, def USD) USD {
	if rate == 0 {
		return def
	}
	return rate
}

// AnswerModels returns the names of the models other than name that an
// answer to a call for name may name and be billed as at prices other
// than name's: the dated or versioned snapshots of name (as Model reads
// names: "gpt-4o" → "gpt-4o-2024-05-13", and for a router's name
// "openai/gpt-4o" those of gpt-4o) that the catalog or the policy's
// models: price differently — except when the policy itself prices name
// (OwnsPrice: a deployment's contract price), whose answers are billed at
// that price unless the policy prices the snapshot too. An answer is
// billed at the price of the model it names when that price is known
// (llmwrap.Pricer), and a provider names the snapshot that served a call
// (an Azure deployment of gpt-4o-2024-05-13 answers calls for gpt-4o as
// that snapshot, at twice gpt-4o's price): a budget reserves a call at the
// dearest of name and these, so that whichever of them answers, it is
// settled within what was reserved. Any name an answer gives that is a
// snapshot of name is priced as name or one of these (its longest known
// prefix is). Nil when there are none, as for most models; the names are
// sorted.
func (p *Policy) AnswerModels(name string) []string {
	spec, ok := p.Model(name)
	if !ok {
		return nil
	}
	// A name in another case than the catalog's ("GPT-4o") is answered
	// as the model it is priced as, and its snapshots.
	name = p.priceName(name)
	bases := [2]string{name}
	if i := strings.LastIndexByte(name, '/'); i >= 0 && i < len(name)-1 {
		bases[1] = name[i+1:]
	}
	owns := p.OwnsPrice(name)
	var out []string
	consider := func(k string) {
		if k == name || slices.Contains(out, k) || !snapshotOf(bases, k) {
			return
		}
		m, ok := p.Model(k)
		if !ok || !m.HasPrice() || owns && !p.OwnsPrice(k) || samePrice(m, spec) {
			return
		}
		out = append(out, k)
	}
	for _, k := range defaultCatalog().byLen {
		consider(k)
	}
	if p != nil {
		for k := range p.Models {
			consider(k)
		}
	}
	slices.Sort(out)
	return out
}

// snapshotOf reports whether k, or k after a router's prefix, is one of
// the bases or a snapshot (isModelPrefix) of one.
func snapshotOf(bases [2]string, k string) bool {
	short := k
	if i := strings.LastIndexByte(k, '/'); i >= 0 && i < len(k)-1 {
		short = k[i+1:]
	}
	for _, b := range bases {
		if b != "" && (k == b || short == b || isModelPrefix(b, k) || isModelPrefix(b, short)) {
			return true
		}
	}
	return false
}

// samePrice reports whether a and b bill every usage alike: their price
// fields are equal (limits, encoding and image rules aside).
func samePrice(a, b ModelSpec) bool {
	price := func(m ModelSpec) ModelSpec {
		m.Provider, m.ContextWindow, m.MaxOutputTokens, m.Encoding, m.Image, m.Embeddings = "", 0, 0, "", ImageTokens{}, false
		return m
	}
	return reflect.DeepEqual(price(a), price(b))
}
