package policies

import (
	"maps"
	"slices"
	"time"
)

// OnLimit is what a rate limit does with a call that is over it.
type OnLimit string

// OnLimit values. The zero value means OnLimitWait.
const (
	// OnLimitWait waits for a slot, bounded by max_wait and the call's
	// deadline; a call that cannot get one in time is rejected.
	OnLimitWait OnLimit = "wait"
	// OnLimitReject refuses the call at once with the time to wait
	// (an error matching middleware.ErrRateLimited); it does not fall back.
	OnLimitReject OnLimit = "reject"
	// OnLimitFallback moves the call on to the next model of the fallback
	// chain, admitted against that model's own limits.
	OnLimitFallback OnLimit = "fallback"
)

// DefaultMaxWait is the longest a rate limit waits for a slot when
// RateLimits.MaxWait is zero.
const DefaultMaxWait = 30 * time.Second

// DefaultReserveOutput is the number of output tokens a tokens-per-minute
// limit reserves for a request without max_tokens when
// RateLimits.ReserveOutput is zero.
const DefaultReserveOutput = 1024

// RateLimits admits calls before the provider's own limits would refuse
// them: requests and tokens per minute and concurrent calls, per model,
// with each team's share, shared by replicas through a store.
type RateLimits struct {
	// Models holds the provider's limits of each model, by model name.
	// Empty: no rate limits.
	Models map[string]ModelRateLimit `yaml:"models,omitempty" json:"models,omitzero"`
	// Teams holds each team's share of every limited model, by team name;
	// the key "*" is the share of each team not listed. Empty: teams are
	// not separated.
	Teams map[string]TeamShare `yaml:"teams,omitempty" json:"teams,omitzero"`
	// OnLimit is wait, reject or fallback. Empty: wait.
	OnLimit OnLimit `yaml:"on_limit,omitempty" json:"on_limit,omitzero"`
	// MaxWait caps how long a call waits for a slot (the call's deadline
	// also bounds it). Zero: DefaultMaxWait.
	MaxWait Duration `yaml:"max_wait,omitempty" json:"max_wait,omitzero"`
	// ReserveOutput is the number of output tokens reserved against a
	// tokens-per-minute limit for a request without max_tokens, settled
	// with the provider's usage after the call. Zero: DefaultReserveOutput.
	ReserveOutput int64 `yaml:"reserve_output,omitempty" json:"reserve_output,omitzero"`
	// LearnFromProvider slows admissions down with what the provider
	// reports: x-ratelimit-* headers and every 429's Retry-After.
	// Nil: true. Use IsLearning to read it.
	LearnFromProvider *bool `yaml:"learn_from_provider,omitempty" json:"learn_from_provider,omitzero"`
	// Store is where the limits' state is kept. Zero: in memory.
	Store RateLimitStore `yaml:"store,omitempty" json:"store,omitzero"`
}

// IsLearning reports LearnFromProvider with its default (true).
func (r RateLimits) IsLearning() bool { return r.LearnFromProvider == nil || *r.LearnFromProvider }

// Enabled reports whether any model is rate limited.
func (r RateLimits) Enabled() bool { return len(r.Models) > 0 }

// ModelRateLimit is a model's provider limits. A zero field is no limit.
type ModelRateLimit struct {
	// RPM caps requests per minute.
	RPM int64 `yaml:"rpm,omitempty" json:"rpm,omitzero"`
	// TPM caps tokens (input estimate plus reserved output) per minute.
	TPM int64 `yaml:"tpm,omitempty" json:"tpm,omitzero"`
	// MaxConcurrent caps the calls in flight.
	MaxConcurrent int `yaml:"max_concurrent,omitempty" json:"max_concurrent,omitzero"`
	// Burst is the span of the per-minute limits that may be spent at once
	// (providers enforce per-minute limits over shorter periods).
	// Zero: 1s, i.e. rpm/60 requests at once.
	Burst Duration `yaml:"burst,omitempty" json:"burst,omitzero"`
}

// TeamShare is a team's share of each limited model: a Weight (its part of
// the sum of the weights of the teams listed) and/or absolute caps. The
// smaller applies.
type TeamShare struct {
	// Weight is the team's relative share. Zero: no weighted share.
	Weight float64 `yaml:"weight,omitempty" json:"weight,omitzero"`
	// RPM caps the team's requests per minute on each model.
	RPM int64 `yaml:"rpm,omitempty" json:"rpm,omitzero"`
	// TPM caps the team's tokens per minute on each model.
	TPM int64 `yaml:"tpm,omitempty" json:"tpm,omitzero"`
	// MaxConcurrent caps the team's calls in flight on each model.
	MaxConcurrent int `yaml:"max_concurrent,omitempty" json:"max_concurrent,omitzero"`
}

// RateLimitStore is where rate-limit state is kept.
type RateLimitStore struct {
	// Kind is memory or redis. Empty: memory.
	Kind StoreKind `yaml:"kind,omitempty" json:"kind,omitzero"`
	// KeyPrefix prefixes shared-store keys. Empty: "tokenwise".
	KeyPrefix string `yaml:"key_prefix,omitempty" json:"key_prefix,omitzero"`
	// LeaseTTL frees a concurrency slot never released (a crashed
	// replica); set it above your longest call, whose slot would otherwise
	// be freed while it runs. Zero: 2m.
	LeaseTTL Duration `yaml:"lease_ttl,omitempty" json:"lease_ttl,omitzero"`
	// OnUnavailable is the reaction to an unreachable store: fail_closed
	// (reject) or local (admit against LocalFraction of each limit in this
	// process). Empty: fail_closed.
	OnUnavailable OnUnavailable `yaml:"on_unavailable,omitempty" json:"on_unavailable,omitzero"`
	// LocalFraction is the share in (0,1] of each limit a replica admits
	// alone while the store is unavailable. Zero: 0.1.
	LocalFraction float64 `yaml:"local_fraction,omitempty" json:"local_fraction,omitzero"`
}

func (c *checker) rateLimits() {
	r := c.p.RateLimits
	const root = "rate_limits"
	for _, name := range slices.Sorted(maps.Keys(r.Models)) {
		mp := keyPath(joinPath(root, "models"), name)
		m := r.Models[name]
		if _, ok := c.p.Model(name); !ok {
			c.add(mp, "unknown model %q: not in the price catalog nor in models", clip(name))
		}
		c.rates(mp, m.RPM, m.TPM, m.MaxConcurrent)
		c.nonNegDur(joinPath(mp, "burst"), m.Burst)
		if m.Burst > Duration(time.Minute) {
			c.add(joinPath(mp, "burst"), "must be at most 1m (the limits are per minute), got %s", m.Burst)
		}
		if m.RPM == 0 && m.TPM == 0 && m.MaxConcurrent == 0 && c.decoded(mp) {
			c.add(mp, "no limit set: give rpm, tpm or max_concurrent")
		}
	}
	for _, name := range slices.Sorted(maps.Keys(r.Teams)) {
		tp := keyPath(joinPath(root, "teams"), name)
		t := r.Teams[name]
		if t.Weight < 0 {
			c.add(joinPath(tp, "weight"), "must not be negative, got %g", t.Weight)
		}
		c.rates(tp, t.RPM, t.TPM, t.MaxConcurrent)
		if t.Weight == 0 && t.RPM == 0 && t.TPM == 0 && t.MaxConcurrent == 0 && c.decoded(tp) {
			c.add(tp, "no share set: give weight, rpm, tpm or max_concurrent")
		}
	}
	if len(r.Teams) > 0 && len(r.Models) == 0 && c.decoded(joinPath(root, "models")) {
		c.add(joinPath(root, "teams"), "team shares without rate_limits.models: there is nothing to share")
	}
	c.enum(joinPath(root, "on_limit"), string(r.OnLimit), OnLimitWait, OnLimitReject, OnLimitFallback)
	if r.OnLimit == OnLimitFallback && len(c.p.Fallback.Models) == 0 && c.decoded("fallback.models") {
		c.add(joinPath(root, "on_limit"), "fallback needs fallback.models: there is no next model")
	}
	c.nonNegDur(joinPath(root, "max_wait"), r.MaxWait)
	c.nonNeg(joinPath(root, "reserve_output"), r.ReserveOutput)
	s := r.Store
	sp := joinPath(root, "store")
	c.store(sp, s.Kind, s.OnUnavailable, s.LocalFraction)
	c.nonNegDur(joinPath(sp, "lease_ttl"), s.LeaseTTL)
}
