package policies

import (
	pathpkg "path"
	"strings"
)

// Version is the only policy schema version this package reads.
const Version = 1

// Policy is one team's policy: plain data, loaded from a YAML or JSON file by
// Load, LoadFile or LoadBytes (strict, validated) or built in code and checked
// with Validate. A zero section means "off / pass-through".
//
// A Policy is safe for concurrent reads (Model, Validate, Cost on its specs);
// do not mutate it while other goroutines read it.
type Policy struct {
	// Version is the schema version and is required: 1.
	Version int `yaml:"version" json:"version"`
	// Name is the team or policy name, used in reports and as the default
	// team scope. Empty: unnamed.
	Name string `yaml:"name,omitempty" json:"name,omitzero"`
	// Extends names a base policy file this one overrides. It is kept as data
	// here; resolving it is the job of the loader of a policy directory.
	// Empty: no base.
	Extends string `yaml:"extends,omitempty" json:"extends,omitzero"`
	// Models adds models to the embedded price catalog or overrides fields of
	// catalog entries, by model name (see Policy.Model). Empty: the catalog as is.
	Models map[string]ModelSpec `yaml:"models,omitempty" json:"models,omitzero"`
	// Limits is the run guard. Zero: no iteration cap, no run deadline.
	Limits Limits `yaml:"limits,omitempty" json:"limits,omitzero"`
	// Timeouts bounds each LLM call. Zero: no timeouts.
	Timeouts Timeouts `yaml:"timeouts,omitempty" json:"timeouts,omitzero"`
	// Budget caps tokens and money per request, run and team. Zero: no budget.
	Budget Budget `yaml:"budget,omitempty" json:"budget,omitzero"`
	// Cache is the response cache. Zero: no caching.
	Cache Cache `yaml:"cache,omitempty" json:"cache,omitzero"`
	// Routing picks the model per call. Zero: every call uses the model the
	// caller asked for.
	Routing Routing `yaml:"routing,omitempty" json:"routing,omitzero"`
	// Fallback is the resilience chain. Zero: no fallback, no retry, no breaker.
	Fallback Fallback `yaml:"fallback,omitempty" json:"fallback,omitzero"`
	// RateLimits admits calls within the providers' limits, per model and
	// team. Zero: no rate limits.
	RateLimits RateLimits `yaml:"rate_limits,omitempty" json:"rate_limits,omitzero"`
	// Tools governs tool execution. Zero: tools run one at a time, unbounded,
	// and an error becomes an observation.
	Tools Tools `yaml:"tools,omitempty" json:"tools,omitzero"`
	// Context manages the size of the conversation sent to the model.
	// Zero: the conversation is sent as is.
	Context ContextPolicy `yaml:"context,omitempty" json:"context,omitzero"`
	// Observability holds logging settings. Zero: defaults (info level).
	Observability Observability `yaml:"observability,omitempty" json:"observability,omitzero"`
	// Teams says how a registry treats callers. It is read from the
	// directory's default policy. Zero: an unknown team gets the default
	// policy with a warning.
	Teams TeamsPolicy `yaml:"teams,omitempty" json:"teams,omitzero"`

	// src holds the positions of the file the policy was loaded from, so
	// that Validate can name file:line:col. Nil for a policy built in code.
	src *sourceMap
	// weights is the digest of the learned weights file as a directory
	// load read it (see WeightsDigest).
	weights string
}

// ModelSpec describes one model: its provider, list prices and limits.
// Prices are USD per one million tokens.
type ModelSpec struct {
	// Provider is informational ("openai", "anthropic", "google", ...).
	Provider string `yaml:"provider,omitempty" json:"provider,omitzero"`
	// InputPer1M is the price of one million uncached input tokens.
	InputPer1M USD `yaml:"input_per_1m,omitempty" json:"input_per_1m,omitzero"`
	// OutputPer1M is the price of one million output tokens (reasoning
	// tokens included).
	OutputPer1M USD `yaml:"output_per_1m,omitempty" json:"output_per_1m,omitzero"`
	// CachedInputPer1M is the price of one million input tokens read from the
	// provider's prompt cache. Zero: billed at InputPer1M.
	CachedInputPer1M USD `yaml:"cached_input_per_1m,omitempty" json:"cached_input_per_1m,omitzero"`
	// CacheWritePer1M is the price of one million input tokens written to the
	// provider's prompt cache (Anthropic). Zero: billed at InputPer1M.
	CacheWritePer1M USD `yaml:"cache_write_per_1m,omitempty" json:"cache_write_per_1m,omitzero"`
	// AudioInputPer1M is the price of one million audio input tokens
	// (OpenAI's audio models). Zero: billed at InputPer1M.
	AudioInputPer1M USD `yaml:"audio_input_per_1m,omitempty" json:"audio_input_per_1m,omitzero"`
	// AudioOutputPer1M is the price of one million audio output tokens.
	// Zero: billed at OutputPer1M. A model with an audio output price is
	// reserved at the dearer of the two output prices.
	AudioOutputPer1M USD `yaml:"audio_output_per_1m,omitempty" json:"audio_output_per_1m,omitzero"`
	// ContextWindow is the maximum number of tokens, input plus output.
	// Zero: unknown.
	ContextWindow int64 `yaml:"context_window,omitempty" json:"context_window,omitzero"`
	// MaxOutputTokens is the largest completion the model produces.
	// Zero: unknown.
	MaxOutputTokens int64 `yaml:"max_output_tokens,omitempty" json:"max_output_tokens,omitzero"`
	// Encoding is the tiktoken encoding of the model ("o200k_base",
	// "cl100k_base"). Empty: not an OpenAI tokenizer; token counts are
	// estimated conservatively.
	Encoding string `yaml:"encoding,omitempty" json:"encoding,omitzero"`
	// Image is how the model counts the input tokens of an image (OpenAI's
	// vision rules differ per model family). Zero: gpt-4o's rule.
	Image ImageTokens `yaml:"image,omitempty" json:"image,omitzero"`
	// Free marks a model that costs nothing (e.g. self-hosted). Without it a
	// model whose input and output prices are both zero has no known price,
	// which is an error when a USD budget is set.
	Free bool `yaml:"free,omitempty" json:"free,omitzero"`
	// LongContext prices a call whose input is above a threshold at other
	// rates, all its tokens (Gemini 2.5 Pro above 200k input tokens,
	// Claude Sonnet 4 above 200k). Zero: one rate at every length.
	LongContext LongContextPrices `yaml:"long_context,omitempty" json:"long_context,omitzero"`
	// ServiceTiers are the rates of the provider's processing tiers other
	// than the standard one, by the name its API uses for them (OpenAI's
	// service_tier: "flex", "priority", "scale"): a call is billed at the
	// tier its answer says processed it, else the one the request asked
	// for. A zero rate of a tier is the standard one. "default", "auto"
	// and other providers' names of the standard tier ("on_demand",
	// "standard") are not tiers here: the standard rates are the model's
	// own. A premium tier not listed ("priority", "fast", "ultrafast",
	// "performance") is priced at 2.5 times the standard rates, any other
	// at them: see ModelSpec.Rates.
	ServiceTiers map[string]ServiceTierPrices `yaml:"service_tiers,omitempty" json:"service_tiers,omitzero"`
	// ToolCalls are the fees of the provider's hosted tools, in USD per
	// call, by the tool's type in the Responses API: web_search,
	// web_search_preview, file_search, and code_interpreter (per container
	// of 1 GB the call creates; a larger container's memory_limit scales
	// it: 4g ×4, 16g ×16, 64g ×64), and image_generation (per image; no
	// catalog price: a gateway under a USD budget refuses the tool unless a
	// policy declares it). Billed on top of the call's tokens.
	ToolCalls map[string]USD `yaml:"tool_calls,omitempty" json:"tool_calls,omitzero"`
	// RequestFee is the provider's fee per request, in USD, on top of its
	// tokens: Perplexity's per-request search fee, the per-call fee of
	// OpenAI's search-preview chat models (LiteLLM's
	// input_cost_per_request). Cost adds it to every request's tokens: a
	// call's reservation, each attempt the provider answered, what a cache
	// hit saved.
	RequestFee USD `yaml:"request_fee,omitempty" json:"request_fee,omitzero"`
	// Embeddings marks an embeddings model (OpenAI's text-embedding-3-small,
	// text-embedding-3-large, text-embedding-ada-002): priced by its input
	// tokens, it has no output, and a policy that names it where a chat
	// model answers (routing, fallback, downgrade, summaries) is refused.
	Embeddings bool `yaml:"embeddings,omitempty" json:"embeddings,omitzero"`
}

// Rates are the rates that differ between processing tiers and context
// lengths, in USD per one million tokens (see ModelSpec.Rates).
type Rates struct {
	InputPer1M, CachedInputPer1M, CacheWritePer1M, OutputPer1M USD
}

// LongContextPrices are the rates of a call whose input tokens are above
// AboveInputTokens: all of its tokens, input and output, are billed at
// them. A zero rate is the one below the threshold.
type LongContextPrices struct {
	// AboveInputTokens is the threshold: a call with more input tokens
	// than this is billed at the rates below. Zero: no rule.
	AboveInputTokens int64 `yaml:"above_input_tokens,omitempty" json:"above_input_tokens,omitzero"`
	InputPer1M       USD   `yaml:"input_per_1m,omitempty" json:"input_per_1m,omitzero"`
	CachedInputPer1M USD   `yaml:"cached_input_per_1m,omitempty" json:"cached_input_per_1m,omitzero"`
	CacheWritePer1M  USD   `yaml:"cache_write_per_1m,omitempty" json:"cache_write_per_1m,omitzero"`
	OutputPer1M      USD   `yaml:"output_per_1m,omitempty" json:"output_per_1m,omitzero"`
}

// ServiceTierPrices are a processing tier's rates (a zero rate is the
// standard one), with the tier's own long-context rule when its rates
// above the threshold differ (zero: the model's rule applies).
type ServiceTierPrices struct {
	InputPer1M       USD               `yaml:"input_per_1m,omitempty" json:"input_per_1m,omitzero"`
	CachedInputPer1M USD               `yaml:"cached_input_per_1m,omitempty" json:"cached_input_per_1m,omitzero"`
	CacheWritePer1M  USD               `yaml:"cache_write_per_1m,omitempty" json:"cache_write_per_1m,omitzero"`
	OutputPer1M      USD               `yaml:"output_per_1m,omitempty" json:"output_per_1m,omitzero"`
	LongContext      LongContextPrices `yaml:"long_context,omitempty" json:"long_context,omitzero"`
}

// ImageTokens is a model family's rule for the input tokens of one image,
// as OpenAI documents it. Tile-based families (gpt-4o, gpt-4o-mini, o1,
// o3, gpt-4.1, gpt-5) count Base tokens per image plus Tile tokens per
// 512-pixel tile of the resized image at detail high (at most 8 tiles: a
// 2048×768 image); at detail low only Base. Patch-based families
// (gpt-4.1-mini, gpt-4.1-nano, o4-mini) count 32-pixel patches, at most
// 1536, times the family's multiplier: Patch is that maximum, already
// multiplied. An image of unknown size is reserved at its detail's worst
// case.
type ImageTokens struct {
	// Base is counted for every image; all of it at detail low.
	Base int64 `yaml:"base,omitempty" json:"base,omitzero"`
	// Tile is counted per 512-pixel tile at detail high or auto.
	Tile int64 `yaml:"tile,omitempty" json:"tile,omitzero"`
	// Patch, for patch-based families, is the tokens of the largest image
	// (1536 patches × the family multiplier, rounded up); detail is ignored.
	Patch int64 `yaml:"patch,omitempty" json:"patch,omitzero"`
}

// MaxImageTiles is the largest number of 512-pixel tiles of one image at
// detail high: an image is fitted into 2048×2048, then its shortest side
// scaled to 768 pixels, so 768×2048 (2 × 4 tiles) is the worst case.
const MaxImageTiles = 8

// IsZero reports whether no rule is set.
func (t ImageTokens) IsZero() bool { return t == ImageTokens{} }

// WorstCase returns the most tokens one image of unknown size can count at
// detail ("low", "high", "auto" or "" for the provider's default, auto).
// A zero rule is gpt-4o's (85 + 170 per tile).
func (t ImageTokens) WorstCase(detail string) int64 {
	if t.IsZero() {
		t = ImageTokens{Base: 85, Tile: 170}
	}
	if t.Patch > 0 {
		return t.Patch
	}
	if detail == "low" {
		return t.Base
	}
	return t.Base + MaxImageTiles*t.Tile
}

// HasPrice reports whether the model's cost is known: it is Free or has an
// input or output price.
func (m ModelSpec) HasPrice() bool {
	return m.Free || m.InputPer1M > 0 || m.OutputPer1M > 0 || m.RequestFee > 0
}

// Limits is the run guard, enforced for every run.
type Limits struct {
	// MaxCalls caps the LLM calls (agent iterations) in one run.
	// Zero: unlimited.
	MaxCalls int `yaml:"max_calls,omitempty" json:"max_calls,omitzero"`
	// RunTimeout is the deadline of a whole run. Zero: none.
	RunTimeout Duration `yaml:"run_timeout,omitempty" json:"run_timeout,omitzero"`
}

// Timeouts bounds each LLM call.
type Timeouts struct {
	// Call bounds one attempt of a call (each retry and fallback is one),
	// from send to the last chunk. Zero: none.
	Call Duration `yaml:"call,omitempty" json:"call,omitzero"`
	// Total bounds a call as its caller sees it, from send to the last
	// chunk: all its attempts, the waits between them and its fallbacks.
	// When it passes the call fails with an error matching
	// timeout.ErrTotal; no retry or fallback starts after it. At least
	// Call when both are set (a file that extends a base and raises Call
	// above the Total it inherits, writing none, gets Total raised to
	// Call). Zero: none.
	Total Duration `yaml:"total,omitempty" json:"total,omitzero"`
	// FirstToken bounds the wait for the first streamed chunk. Zero: none.
	FirstToken Duration `yaml:"first_token,omitempty" json:"first_token,omitzero"`
	// Idle bounds the gap between two streamed chunks. Zero: none.
	Idle Duration `yaml:"idle,omitempty" json:"idle,omitzero"`
	// Tool bounds one tool call. Zero: none (see also Tools.Timeout, which
	// takes precedence).
	Tool Duration `yaml:"tool,omitempty" json:"tool,omitzero"`
	// Models gives some models limits of their own (a reasoning model
	// thinks for minutes where gpt-4o answers in seconds). The first entry
	// whose match names a model sets its limits; a limit the entry leaves
	// at zero is the one above (see Timeouts.For). Call, first_token and
	// idle are those of each attempt's model (after routing and
	// fallback); total is the one of the model the caller asked for,
	// extended to the longer total of an attempt's model (the total
	// follows the model that answers; it is never shortened).
	// Empty: every model gets the limits above.
	Models []ModelTimeouts `yaml:"models,omitempty" json:"models,omitzero"`
}

// ModelTimeouts is the limits of the models an entry of timeouts.models
// matches. A zero limit is the policy's (timeouts.call, ...); a total left
// at zero is at least the entry's call (max(timeouts.total, call)), as a
// file that extends a base and raises only call gets its total raised.
type ModelTimeouts struct {
	// Match names the models: names or patterns of path.Match ("o3*" for
	// o3, o3-mini, o3-pro and their dated snapshots), as routing rules'
	// requested_model; a name with a router's prefix ("openai/o3") that
	// none matches whole is matched by its part after the last '/'.
	// Required.
	Match []string `yaml:"match,omitempty" json:"match,omitzero"`
	// Call bounds one attempt of the model. Zero: timeouts.call.
	Call Duration `yaml:"call,omitempty" json:"call,omitzero"`
	// Total bounds a call that asked for the model, all its attempts
	// included. Zero: timeouts.total, raised to Call when shorter.
	Total Duration `yaml:"total,omitempty" json:"total,omitzero"`
	// FirstToken bounds the wait for the model's first streamed chunk.
	// Zero: timeouts.first_token.
	FirstToken Duration `yaml:"first_token,omitempty" json:"first_token,omitzero"`
	// Idle bounds the gap between two of the model's streamed chunks.
	// Zero: timeouts.idle.
	Idle Duration `yaml:"idle,omitempty" json:"idle,omitzero"`
}

// Matches reports whether the entry names model: the whole name, else,
// for a name with a router's prefix ("openai/o3", as OpenRouter and
// LiteLLM name a provider's model), the model after its last '/', as
// Policy.Model prices it; else the same in lower case ("O3", "OpenAI/GPT-5":
// providers and routers read model names in any case, and the catalog
// prices them so).
func (m ModelTimeouts) Matches(model string) bool {
	if m.matchesAs(model) {
		return true
	}
	lower := strings.ToLower(model)
	return lower != model && m.matchesAs(lower)
}

// matchesAs is Matches without the case folding.
func (m ModelTimeouts) matchesAs(model string) bool {
	for _, p := range m.Match {
		if ok, _ := pathpkg.Match(p, model); ok {
			return true
		}
	}
	if i := strings.LastIndexByte(model, '/'); i >= 0 && i < len(model)-1 {
		return m.matchesAs(model[i+1:])
	}
	return false
}

// Entry returns the index in t.Models of the entry that sets model's
// limits, or -1 when none does: the first that matches the name as
// written (whole, else after a router's prefix), else the first that
// matches it in lower case, as Policy.Model reads a name the catalog
// does not know as written.
func (t Timeouts) Entry(model string) int {
	for i, m := range t.Models {
		if m.matchesAs(model) {
			return i
		}
	}
	if lower := strings.ToLower(model); lower != model {
		for i, m := range t.Models {
			if m.matchesAs(lower) {
				return i
			}
		}
	}
	return -1
}

// For returns the limits of model: those of its timeouts.models entry
// (see Entry) over the policy's (each limit the entry leaves at zero is
// the policy's; a total it leaves at zero is raised to its call when
// shorter), or the policy's when none matches. The result has no Models.
func (t Timeouts) For(model string) Timeouts {
	if i := t.Entry(model); i >= 0 {
		return t.Models[i].Over(t)
	}
	t.Models = nil
	return t
}

// Over returns the entry's limits over t's: each limit the entry leaves at
// zero is t's, and a total it leaves at zero is raised to its call when
// shorter. The result has no Models.
func (m ModelTimeouts) Over(t Timeouts) Timeouts {
	t.Models = nil
	if m.Call > 0 {
		t.Call = m.Call
	}
	if m.FirstToken > 0 {
		t.FirstToken = m.FirstToken
	}
	if m.Idle > 0 {
		t.Idle = m.Idle
	}
	if m.Total > 0 {
		t.Total = m.Total
	} else if t.Total > 0 && t.Call > t.Total {
		t.Total = t.Call
	}
	return t
}

// MaxCall returns the longest call limit of any model: timeouts.call or
// an entry's of timeouts.models, whichever is longer (zero: none set).
func (t Timeouts) MaxCall() Duration {
	c := t.Call
	for _, m := range t.Models {
		c = max(c, m.Call)
	}
	return c
}

// OnExceed is what happens when a budget would be exceeded.
type OnExceed string

// OnExceed values. The zero value means OnExceedReject.
const (
	OnExceedReject    OnExceed = "reject"    // fail the call with a typed budget error
	OnExceedDowngrade OnExceed = "downgrade" // route the call to Budget.DowngradeTo
	OnExceedWarn      OnExceed = "warn"      // let the call through and emit an event
)

// Budget caps tokens and money. Limits are hard: reserved before a call at
// the price of the model that will serve it, settled after.
type Budget struct {
	// Request caps a single call. Zero: no per-call caps.
	Request RequestBudget `yaml:"request,omitempty" json:"request,omitzero"`
	// Run caps one run. Zero: no run budget.
	Run RunBudget `yaml:"run,omitempty" json:"run,omitzero"`
	// Team caps a team over a period. Zero: no team budget.
	Team TeamBudget `yaml:"team,omitempty" json:"team,omitzero"`
	// OnExceed is the reaction to an exceeded budget. Empty: reject.
	OnExceed OnExceed `yaml:"on_exceed,omitempty" json:"on_exceed,omitzero"`
	// DowngradeTo is the model used when OnExceed is downgrade; required then.
	DowngradeTo string `yaml:"downgrade_to,omitempty" json:"downgrade_to,omitzero"`
	// WarnAt lists fractions in (0,1] of a limit at which a soft-limit event
	// fires, once per window (e.g. [0.5, 0.8, 1.0]). Empty: no warnings.
	WarnAt []float64 `yaml:"warn_at,omitempty" json:"warn_at,omitzero"`
	// Store is where team spend is kept. Zero: in memory.
	Store BudgetStore `yaml:"store,omitempty" json:"store,omitzero"`
	// MinOutputTokens is the smallest useful answer. When a run or team
	// budget cannot afford a call's max_tokens but affords at least this
	// many output tokens, the call is sent with max_tokens lowered to what
	// the budget affords (and a note says so); below it the call is
	// refused (on_exceed applies). Zero: 256.
	MinOutputTokens int64 `yaml:"min_output_tokens,omitempty" json:"min_output_tokens,omitzero"`
	// DefaultServiceTier is the processing tier the provider puts a call
	// at that names none (or "auto"): the default tier of the provider's
	// project, e.g. priority when the OpenAI project is set to priority
	// processing. Such a call is reserved at that tier's rates (its answer
	// names the tier it is billed at; an answer that names "auto", no
	// tier it used, is billed at this one). Empty: the standard rates.
	DefaultServiceTier string `yaml:"default_service_tier,omitempty" json:"default_service_tier,omitzero"`
}

// RequestBudget caps a single LLM call.
type RequestBudget struct {
	// MaxInputTokens rejects a call whose estimated input is larger.
	// Zero: no cap.
	MaxInputTokens int64 `yaml:"max_input_tokens,omitempty" json:"max_input_tokens,omitzero"`
	// MaxOutputTokens is injected as max_tokens when the request sets none,
	// and caps it when larger; a model whose max_output_tokens is smaller
	// gets that instead. Zero: no cap.
	MaxOutputTokens int64 `yaml:"max_output_tokens,omitempty" json:"max_output_tokens,omitzero"`
}

// RunBudget caps one run.
type RunBudget struct {
	// MaxTokens caps input plus output tokens over the run. Zero: no cap.
	MaxTokens int64 `yaml:"max_tokens,omitempty" json:"max_tokens,omitzero"`
	// MaxUSD caps the money spent by the run. Zero: no cap.
	MaxUSD USD `yaml:"max_usd,omitempty" json:"max_usd,omitzero"`
	// MaxCalls caps LLM calls in the run. Zero: no cap (Limits.MaxCalls
	// still applies; the smaller non-zero cap wins).
	MaxCalls int `yaml:"max_calls,omitempty" json:"max_calls,omitzero"`
	// MaxWallTime caps the run's elapsed time. Zero: no cap
	// (Limits.RunTimeout still applies; the smaller non-zero wins).
	MaxWallTime Duration `yaml:"max_wall_time,omitempty" json:"max_wall_time,omitzero"`
}

// Period is the accounting period of a team budget.
type Period string

// Period values. There is no default: a team limit requires a period.
const (
	PeriodDaily   Period = "daily"   // calendar day, UTC
	PeriodMonthly Period = "monthly" // calendar month, UTC
	PeriodRolling Period = "rolling" // sliding window of TeamBudget.Window
)

// TeamBudget caps a team's spend per period.
type TeamBudget struct {
	// Period is the accounting period; required when a limit is set.
	Period Period `yaml:"period,omitempty" json:"period,omitzero"`
	// Window is the length of a rolling period; required for rolling and
	// only allowed there.
	Window Duration `yaml:"window,omitempty" json:"window,omitzero"`
	// MaxUSD caps the money spent per period. Zero: no cap.
	MaxUSD USD `yaml:"max_usd,omitempty" json:"max_usd,omitzero"`
	// MaxTokens caps tokens per period. Zero: no cap.
	MaxTokens int64 `yaml:"max_tokens,omitempty" json:"max_tokens,omitzero"`
}

// StoreKind names a backing store.
type StoreKind string

// StoreKind values. The zero value means StoreMemory.
const (
	StoreMemory StoreKind = "memory" // in process, bounded
	StoreRedis  StoreKind = "redis"  // shared by replicas
	StoreDir    StoreKind = "dir"    // a directory (artifacts only)
)

// OnUnavailable is what a budget does when its shared store is unreachable.
type OnUnavailable string

// OnUnavailable values. The zero value means UnavailableFailClosed.
const (
	UnavailableFailClosed OnUnavailable = "fail_closed" // reject calls
	UnavailableLocal      OnUnavailable = "local"       // spend a local share (LocalFraction)
)

// BudgetStore is where budget spend and reservations are kept.
type BudgetStore struct {
	// Kind is memory or redis. Empty: memory.
	Kind StoreKind `yaml:"kind,omitempty" json:"kind,omitzero"`
	// KeyPrefix prefixes shared-store keys. Empty: "tokenwise".
	KeyPrefix string `yaml:"key_prefix,omitempty" json:"key_prefix,omitzero"`
	// ReservationTTL expires a reservation never settled (a crashed
	// replica). Zero: 2m.
	ReservationTTL Duration `yaml:"reservation_ttl,omitempty" json:"reservation_ttl,omitzero"`
	// OnUnavailable is the reaction to an unreachable store. Empty: fail_closed.
	OnUnavailable OnUnavailable `yaml:"on_unavailable,omitempty" json:"on_unavailable,omitzero"`
	// LocalFraction is the share in (0,1] of each limit a replica may spend
	// alone while the store is unavailable (OnUnavailable local). Zero: 0.1.
	LocalFraction float64 `yaml:"local_fraction,omitempty" json:"local_fraction,omitzero"`
}

// CacheScope is who shares cached answers.
type CacheScope string

// CacheScope values. The zero value means CacheScopeTeam.
const (
	CacheScopeTeam   CacheScope = "team"   // answers are shared within a team
	CacheScopeGlobal CacheScope = "global" // answers are shared by all teams
)

// Cache is the exact-match response cache.
type Cache struct {
	// Enabled turns the cache on. False: no caching; other fields ignored.
	Enabled bool `yaml:"enabled,omitempty" json:"enabled,omitzero"`
	// TTL is how long an answer stays. Zero: until evicted.
	TTL Duration `yaml:"ttl,omitempty" json:"ttl,omitzero"`
	// MaxEntries bounds the number of answers. Zero: 10000.
	MaxEntries int `yaml:"max_entries,omitempty" json:"max_entries,omitzero"`
	// MaxBytes bounds the size of stored answers. Zero: no byte bound.
	MaxBytes ByteSize `yaml:"max_bytes,omitempty" json:"max_bytes,omitzero"`
	// Scope is team or global. Empty: team.
	Scope CacheScope `yaml:"scope,omitempty" json:"scope,omitzero"`
	// DeterministicOnly stores only the answers of deterministic requests
	// (temperature 0 or a seed). False: identical requests share an answer
	// whatever their temperature, as LiteLLM, Portkey and Helicone do.
	DeterministicOnly bool `yaml:"deterministic_only,omitempty" json:"deterministic_only,omitzero"`
	// Store is memory or redis. Empty: memory.
	Store StoreKind `yaml:"store,omitempty" json:"store,omitzero"`
	// FailClosed fails the call when the cache store errors. False: a store
	// error is a miss.
	FailClosed bool `yaml:"fail_closed,omitempty" json:"fail_closed,omitzero"`
	// Streams caches streaming requests (a hit is replayed as a stream).
	// False: a streaming request neither reads nor writes the cache (a
	// bypass, "stream not cacheable under this policy"). Nil: true. Use
	// CachesStreams to read it.
	Streams *bool `yaml:"streams,omitempty" json:"streams,omitzero"`
}

// CachesStreams reports Streams with its default (true).
func (c Cache) CachesStreams() bool { return c.Streams == nil || *c.Streams }

// Routing picks the model for each call.
type Routing struct {
	// Default is the model used when no rule matches. Empty: the model the
	// caller asked for.
	Default string `yaml:"default,omitempty" json:"default,omitzero"`
	// Rules are tried in order; the first match picks the model.
	Rules []Rule `yaml:"rules,omitempty" json:"rules,omitzero"`
	// RegenerateFinal rewrites a final answer produced by a cheap model with
	// a strong one, without tools. Zero: off.
	RegenerateFinal RegenerateFinal `yaml:"regenerate_final,omitempty" json:"regenerate_final,omitzero"`
	// Cascade tries models from cheap to strong until a check passes.
	// Zero: off.
	Cascade Cascade `yaml:"cascade,omitempty" json:"cascade,omitzero"`
	// LargerWindow lists models, in order, to escalate to when a call does
	// not fit the routed model's context window. Empty: no escalation.
	LargerWindow []string `yaml:"larger_window,omitempty" json:"larger_window,omitzero"`
	// Learned routes the calls no rule matched with a learned scorer
	// (`tokenwise route train`) instead of Default. Zero: off.
	Learned LearnedRouting `yaml:"learned,omitempty" json:"learned,omitzero"`
}

// LearnedRouting sends a call that no rule matched to Strong when the
// learned score of its last user message reaches Threshold, to Weak
// otherwise.
type LearnedRouting struct {
	// Weights is the weights file written by `tokenwise route train`; a
	// relative path is relative to the directory of the policy file that
	// sets it (to the working directory for a policy built in code).
	// Required when any other field is set.
	Weights string `yaml:"weights,omitempty" json:"weights,omitzero"`
	// Threshold in (0,1]: a score at or above it goes to Strong. Zero: the
	// threshold calibrated by training, stored in the weights file.
	Threshold float64 `yaml:"threshold,omitempty" json:"threshold,omitzero"`
	// Strong is the strong model. Empty: Routing.Default.
	Strong string `yaml:"strong,omitempty" json:"strong,omitzero"`
	// Weak is the cheap model; required.
	Weak string `yaml:"weak,omitempty" json:"weak,omitzero"`
}

// IsZero reports whether learned routing is off.
func (l LearnedRouting) IsZero() bool { return l == LearnedRouting{} }

// Rule routes the calls matching When to Model.
type Rule struct {
	// Name identifies the rule in events and reports. Empty: "rules[i]".
	Name string `yaml:"name,omitempty" json:"name,omitzero"`
	// When holds the conditions; all set conditions must hold. Zero: the
	// rule matches every call.
	When Condition `yaml:"when,omitempty" json:"when,omitzero"`
	// Model is the model to use; required.
	Model string `yaml:"model,omitempty" json:"model,omitzero"`
}

// Stage is the step of an agent loop a call belongs to. The core package
// has its own Stage type; the strings are the same.
type Stage string

// Stage values.
const (
	StageToolSelection  Stage = "tool_selection"  // the model picks tools
	StageResultAnalysis Stage = "result_analysis" // the model reads tool results
	StageFinalAnswer    Stage = "final_answer"    // the model writes the answer
)

// KeywordScope is the text that Condition.Keywords are searched in.
type KeywordScope string

// KeywordScope values. The zero value means KeywordsInLastUser.
const (
	KeywordsInLastUser     KeywordScope = "last_user"    // the last user message
	KeywordsInConversation KeywordScope = "conversation" // every message
)

// BudgetScope names a budget a condition looks at.
type BudgetScope string

// BudgetScope values. The zero value means BudgetScopeRun.
const (
	BudgetScopeRun  BudgetScope = "run"
	BudgetScopeTeam BudgetScope = "team"
)

// Condition is the conjunction of the set conditions of a rule. Each zero
// field is "don't care".
type Condition struct {
	// Stage matches the call's agent stage. Empty: any stage.
	Stage Stage `yaml:"stage,omitempty" json:"stage,omitzero"`
	// Keywords match when any of them appears as a whole word,
	// case-insensitively, in the KeywordsIn text. Empty: no keyword condition.
	Keywords []string `yaml:"keywords,omitempty" json:"keywords,omitzero"`
	// KeywordsIn is the text searched. Empty: last_user.
	KeywordsIn KeywordScope `yaml:"keywords_in,omitempty" json:"keywords_in,omitzero"`
	// Regex matches the KeywordsIn text (Go RE2 syntax). Empty: none.
	Regex string `yaml:"regex,omitempty" json:"regex,omitzero"`
	// MinInputTokens matches calls with at least this estimated input.
	// Zero: no lower bound.
	MinInputTokens int64 `yaml:"min_input_tokens,omitempty" json:"min_input_tokens,omitzero"`
	// MaxInputTokens matches calls with at most this estimated input.
	// Zero: no upper bound.
	MaxInputTokens int64 `yaml:"max_input_tokens,omitempty" json:"max_input_tokens,omitzero"`
	// HasTools matches calls that offer tools (true) or none (false).
	// Nil: either.
	HasTools *bool `yaml:"has_tools,omitempty" json:"has_tools,omitzero"`
	// Team matches the caller's team. Empty: any team.
	Team string `yaml:"team,omitempty" json:"team,omitzero"`
	// BudgetBelow matches when the remaining budget is below a fraction.
	// Nil: no budget condition.
	BudgetBelow *BudgetBelow `yaml:"budget_below,omitempty" json:"budget_below,omitzero"`
	// RequestedModel matches calls whose caller asked for one of these
	// models: names or patterns of path.Match ("gpt-4o-20*" for gpt-4o's
	// dated snapshots; "gpt-4o*" would match gpt-4o-mini too). Empty: any
	// model.
	RequestedModel []string `yaml:"requested_model,omitempty" json:"requested_model,omitzero"`
}

// IsZero reports whether no condition is set, i.e. the rule matches all.
func (c Condition) IsZero() bool {
	return c.Stage == "" && len(c.Keywords) == 0 && c.KeywordsIn == "" && c.Regex == "" &&
		c.MinInputTokens == 0 && c.MaxInputTokens == 0 && c.HasTools == nil && c.Team == "" &&
		c.BudgetBelow == nil && len(c.RequestedModel) == 0
}

// BudgetBelow is a condition on the remaining share of a budget.
type BudgetBelow struct {
	// Scope is the budget looked at: run or team. Empty: run.
	Scope BudgetScope `yaml:"scope,omitempty" json:"scope,omitzero"`
	// Fraction in (0,1]: the condition holds while remaining/limit is
	// below it. Required.
	Fraction float64 `yaml:"fraction,omitempty" json:"fraction,omitzero"`
}

// RegenerateFinal rewrites final answers with a stronger model.
type RegenerateFinal struct {
	// Enabled turns it on. False: off.
	Enabled bool `yaml:"enabled,omitempty" json:"enabled,omitzero"`
	// Model writes the final answer. Empty: Routing.Default.
	Model string `yaml:"model,omitempty" json:"model,omitzero"`
}

// CascadeCheck is an acceptance check of a cascade step.
type CascadeCheck string

// CascadeCheck values.
const (
	CheckValidToolJSON CascadeCheck = "valid_tool_json" // tool-call arguments parse as JSON
	CheckNonEmpty      CascadeCheck = "non_empty"       // text or tool calls present
	CheckFinishReason  CascadeCheck = "finish_reason"   // finished by stop or tool calls, not length/filter
)

// Cascade tries Models in order and accepts the first answer passing Checks.
type Cascade struct {
	// Models, cheapest first; at least two when set. Empty: no cascade.
	Models []string `yaml:"models,omitempty" json:"models,omitzero"`
	// Checks that an answer must pass. Empty: all checks.
	Checks []CascadeCheck `yaml:"checks,omitempty" json:"checks,omitzero"`
}

// ErrorClass names a class of failure of the error taxonomy.
type ErrorClass string

// ErrorClass values.
const (
	ClassRateLimited   ErrorClass = "rate_limited"
	ClassUnavailable   ErrorClass = "unavailable"
	ClassTimeout       ErrorClass = "timeout"
	ClassNetwork       ErrorClass = "network"
	ClassContextWindow ErrorClass = "context_window"
	ClassBudget        ErrorClass = "budget"
	ClassContentFilter ErrorClass = "content_filter"
	ClassAuth          ErrorClass = "auth"
	ClassBadRequest    ErrorClass = "bad_request"
)

// DefaultFallbackOn returns the error classes that move a call to the next
// fallback model when Fallback.On is empty: rate_limited, unavailable,
// timeout, network and context_window.
func DefaultFallbackOn() []ErrorClass {
	return []ErrorClass{ClassRateLimited, ClassUnavailable, ClassTimeout, ClassNetwork, ClassContextWindow}
}

// Fallback is the resilience chain around the provider.
type Fallback struct {
	// Models are tried in order after the routed model, each at most once.
	// Empty: no fallback.
	Models []string `yaml:"models,omitempty" json:"models,omitzero"`
	// On lists the error classes that move on to the next model.
	// Empty: DefaultFallbackOn.
	On []ErrorClass `yaml:"on,omitempty" json:"on,omitzero"`
	// Retry retries transient failures on the same model. Zero: no retry.
	Retry Retry `yaml:"retry,omitempty" json:"retry,omitzero"`
	// Breaker is the per-model circuit breaker. Zero: no breaker.
	Breaker Breaker `yaml:"breaker,omitempty" json:"breaker,omitzero"`
	// Hedge sends a second request when the first is slow. Zero: off.
	Hedge Hedge `yaml:"hedge,omitempty" json:"hedge,omitzero"`
	// NeverDearer moves a call only to a model of Models whose input and
	// output prices are at most those of the model the call asked for (a
	// free model's call moves only to free models; a call of a model
	// without a price, which cannot be compared, moves nowhere): a
	// fallback chain shared by callers of several models never raises a
	// caller's prices. It does not bind routing.larger_window's
	// escalation. False: every model of Models.
	NeverDearer bool `yaml:"never_dearer,omitempty" json:"never_dearer,omitzero"`
}

// Retry retries transient failures (429, 5xx, timeouts, network) with
// exponential backoff and jitter, honoring Retry-After.
type Retry struct {
	// MaxAttempts counts attempts per model, the first included.
	// Zero or one: no retry.
	MaxAttempts int `yaml:"max_attempts,omitempty" json:"max_attempts,omitzero"`
	// BaseDelay is the first backoff. Zero: 200ms.
	BaseDelay Duration `yaml:"base_delay,omitempty" json:"base_delay,omitzero"`
	// MaxDelay caps one backoff. Zero: 10s.
	MaxDelay Duration `yaml:"max_delay,omitempty" json:"max_delay,omitzero"`
	// MaxTotalWait caps the sum of backoffs of one call. Zero: bounded by
	// the call's deadline only.
	MaxTotalWait Duration `yaml:"max_total_wait,omitempty" json:"max_total_wait,omitzero"`
}

// Breaker is a per-model circuit breaker. It trips on ConsecutiveFailures,
// or on FailureRatio once MinRequests calls were seen in Window.
type Breaker struct {
	// ConsecutiveFailures trips the breaker after this many failures in a
	// row. Zero: not used (with FailureRatio also zero: no breaker).
	ConsecutiveFailures int `yaml:"consecutive_failures,omitempty" json:"consecutive_failures,omitzero"`
	// FailureRatio in (0,1] trips the breaker when failures/requests reach
	// it. Zero: not used.
	FailureRatio float64 `yaml:"failure_ratio,omitempty" json:"failure_ratio,omitzero"`
	// MinRequests is the number of requests needed before FailureRatio
	// applies. Zero: 10.
	MinRequests int `yaml:"min_requests,omitempty" json:"min_requests,omitzero"`
	// OpenFor is how long the breaker stays open. Zero: 30s.
	OpenFor Duration `yaml:"open_for,omitempty" json:"open_for,omitzero"`
	// HalfOpenProbes is the number of trial calls when half-open. Zero: 1.
	HalfOpenProbes int `yaml:"half_open_probes,omitempty" json:"half_open_probes,omitzero"`
	// Window is the period after which closed-state counts are cleared.
	// Zero: 60s.
	Window Duration `yaml:"window,omitempty" json:"window,omitzero"`
}

// Hedge sends the call to the next fallback model as well when the first has
// not answered in time (to the same model again when there is no other),
// takes the first answer, cancels and bills both.
type Hedge struct {
	// Enabled turns hedging on. False: off.
	Enabled bool `yaml:"enabled,omitempty" json:"enabled,omitzero"`
	// Delay before hedging. Zero: derived from Percentile (one of the two
	// is required when enabled).
	Delay Duration `yaml:"delay,omitempty" json:"delay,omitzero"`
	// Percentile in (0,100): hedge after this percentile of recent latencies
	// (e.g. 95). Zero: use Delay. When both are set, the smaller wins.
	Percentile float64 `yaml:"percentile,omitempty" json:"percentile,omitzero"`
}

// ToolErrorMode is what a tool error does to the run.
type ToolErrorMode string

// ToolErrorMode values. The zero value means ToolErrorObserve.
const (
	ToolErrorObserve ToolErrorMode = "observe" // the error becomes the tool's observation
	ToolErrorFail    ToolErrorMode = "fail"    // the run fails
)

// Tools governs tool execution.
type Tools struct {
	// MaxParallel bounds concurrent tool calls of one turn. Zero: 1 (one at
	// a time). Tools with side effects always run alone, in order.
	MaxParallel int `yaml:"max_parallel,omitempty" json:"max_parallel,omitzero"`
	// Timeout bounds one tool call. Zero: Timeouts.Tool.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitzero"`
	// OnError is observe or fail. Empty: observe.
	OnError ToolErrorMode `yaml:"on_error,omitempty" json:"on_error,omitzero"`
	// Artifacts offloads large results. Zero: off.
	Artifacts Artifacts `yaml:"artifacts,omitempty" json:"artifacts,omitzero"`
	// CacheTTL caches results of idempotent tools. Zero: no result cache.
	CacheTTL Duration `yaml:"cache_ttl,omitempty" json:"cache_ttl,omitzero"`
	// PerTool overrides settings by tool name. Empty: none.
	PerTool map[string]ToolSpec `yaml:"per_tool,omitempty" json:"per_tool,omitzero"`
}

// ToolSpec is what the policy knows about one tool.
type ToolSpec struct {
	// SideEffects makes the tool run alone and in order. False: may run in
	// parallel.
	SideEffects bool `yaml:"side_effects,omitempty" json:"side_effects,omitzero"`
	// Idempotent allows caching its results (Tools.CacheTTL). False: never
	// cached.
	Idempotent bool `yaml:"idempotent,omitempty" json:"idempotent,omitzero"`
	// Timeout bounds one call of this tool. Zero: Tools.Timeout.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitzero"`
}

// Artifacts offloads large tool results: the conversation gets an excerpt
// and an id that the read_artifact tool reads back.
type Artifacts struct {
	// ThresholdBytes offloads results larger than this. Zero: not used.
	ThresholdBytes ByteSize `yaml:"threshold_bytes,omitempty" json:"threshold_bytes,omitzero"`
	// ThresholdTokens offloads results with more estimated tokens.
	// Zero: not used. With both thresholds zero artifacts are off.
	ThresholdTokens int64 `yaml:"threshold_tokens,omitempty" json:"threshold_tokens,omitzero"`
	// HeadLines kept in the excerpt. Zero: 20.
	HeadLines int `yaml:"head_lines,omitempty" json:"head_lines,omitzero"`
	// TailLines kept in the excerpt. Zero: 5.
	TailLines int `yaml:"tail_lines,omitempty" json:"tail_lines,omitzero"`
	// Store is memory, dir or redis. Empty: memory.
	Store StoreKind `yaml:"store,omitempty" json:"store,omitzero"`
	// Dir is the directory of the dir store; required for it.
	Dir string `yaml:"dir,omitempty" json:"dir,omitzero"`
	// MaxBytes bounds the memory store, which the executor's runs share:
	// it never evicts an artifact of a run in progress, and a result that
	// does not fit beside them is cut to an excerpt. Zero: 64MiB.
	MaxBytes ByteSize `yaml:"max_bytes,omitempty" json:"max_bytes,omitzero"`
}

// ContextStrategy is a way to shrink a conversation that does not fit.
type ContextStrategy string

// ContextStrategy values.
const (
	StrategyOffload   ContextStrategy = "offload"   // move large tool results to artifacts
	StrategyDrop      ContextStrategy = "drop"      // drop the oldest turns
	StrategySummarise ContextStrategy = "summarise" // summarise the oldest turns
)

// ContextPolicy manages the size of the conversation sent to the model.
type ContextPolicy struct {
	// MaxInputTokens is an absolute ceiling on the input. Zero: none.
	MaxInputTokens int64 `yaml:"max_input_tokens,omitempty" json:"max_input_tokens,omitzero"`
	// WindowFraction in (0,1] caps the input at this share of the routed
	// model's context window. Zero: not used. With MaxInputTokens also set,
	// the smaller wins.
	WindowFraction float64 `yaml:"window_fraction,omitempty" json:"window_fraction,omitzero"`
	// Strategies are applied in order until the conversation fits.
	// Empty: nothing is done (the call may fail with a context-window error).
	Strategies []ContextStrategy `yaml:"strategies,omitempty" json:"strategies,omitzero"`
	// KeepLastTurns are never dropped or summarised. Zero: 4.
	KeepLastTurns int `yaml:"keep_last_turns,omitempty" json:"keep_last_turns,omitzero"`
	// OffloadOverBytes offloads tool results larger than this. Zero: 2KiB.
	OffloadOverBytes ByteSize `yaml:"offload_over_bytes,omitempty" json:"offload_over_bytes,omitzero"`
	// BlockSize compacts turns in blocks of this many, so that the kept
	// prefix stays stable for provider prompt caches. Zero: 10.
	BlockSize int `yaml:"block_size,omitempty" json:"block_size,omitzero"`
	// SummaryModel writes summaries. Empty: Routing.Default.
	SummaryModel string `yaml:"summary_model,omitempty" json:"summary_model,omitzero"`
}

// LogLevel is a slog level name.
type LogLevel string

// LogLevel values. The zero value means LogInfo.
const (
	LogDebug LogLevel = "debug"
	LogInfo  LogLevel = "info"
	LogWarn  LogLevel = "warn"
	LogError LogLevel = "error"
)

// Observability holds logging settings.
type Observability struct {
	// LogLevel is debug, info, warn or error. Empty: info.
	LogLevel LogLevel `yaml:"log_level,omitempty" json:"log_level,omitzero"`
}

// UnknownTeams says what a registry does with a call whose team
// (middleware.WithTeam) has no policy file.
type UnknownTeams string

// UnknownTeams values. The zero value means UnknownTeamsWarn.
const (
	// UnknownTeamsWarn serves the call under the default policy and warns
	// once per unknown team (slog and an event), so a typo is visible.
	UnknownTeamsWarn UnknownTeams = "warn"
	// UnknownTeamsError refuses the call with an error matching
	// ErrUnknownTeam.
	UnknownTeamsError UnknownTeams = "error"
)

// TeamsPolicy is the teams section of a directory's default policy.
type TeamsPolicy struct {
	// Unknown is warn or error. Empty: warn.
	Unknown UnknownTeams `yaml:"unknown,omitempty" json:"unknown,omitzero"`
}
