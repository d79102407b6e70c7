package ratelimit

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// OnLimit is what a rate limit does with a call that is over it.
type OnLimit string

// OnLimit values. The zero value means OnLimitWait.
const (
	// OnLimitWait waits for a slot, bounded by MaxWait and the call's
	// deadline; a call that cannot get one in time is rejected.
	OnLimitWait OnLimit = "wait"
	// OnLimitReject refuses the call at once with the time to wait (an
	// error matching middleware.ErrRateLimited and ErrRejected); it does
	// not fall back.
	OnLimitReject OnLimit = "reject"
	// OnLimitFallback refuses the call with ErrMoveOn, which moves it on to
	// the next model of a fallback chain.
	OnLimitFallback OnLimit = "fallback"
)

// OnUnavailable is the reaction to a store that cannot be reached.
type OnUnavailable string

// OnUnavailable values. The zero value means FailClosed.
const (
	// FailClosed refuses the calls while the store is unreachable.
	FailClosed OnUnavailable = "fail_closed"
	// Local admits calls against LocalFraction of each limit, in this
	// process, while the store is unreachable.
	Local OnUnavailable = "local"
)

// Defaults of zero Config fields.
const (
	// DefaultMaxWait is the longest a call waits for a slot.
	DefaultMaxWait = 30 * time.Second
	// DefaultReserveOutput is the number of output tokens a
	// tokens-per-minute limit reserves for a request without max_tokens.
	DefaultReserveOutput = 1024
	// DefaultLeaseTTL frees a concurrency slot never released.
	DefaultLeaseTTL = 2 * time.Minute
	// DefaultLocalFraction is the share of each limit admitted alone
	// while the store is unreachable (OnUnavailable Local).
	DefaultLocalFraction = 0.1
	// DefaultKeyPrefix prefixes the keys of a shared store.
	DefaultKeyPrefix = "tokenwise"
)

// ErrConfig: New was given a Config it cannot use.
var ErrConfig = errors.New("tokenwise/ratelimit: invalid config")

// Config configures the rate limits. The zero Config limits nothing
// (Middleware returns nil).
type Config struct {
	// Models holds the provider's limits of each model, by model name.
	// Empty: no rate limits; a model not listed is not limited.
	Models map[string]ModelLimit
	// Teams holds each team's share of every limited model, by team name
	// (middleware.TeamFrom); the key "*" is the share of each team not
	// listed. Empty: teams are not separated.
	Teams map[string]TeamShare
	// OnLimit is what happens to a call over a limit. Zero: OnLimitWait.
	OnLimit OnLimit
	// MaxWait caps how long a call waits for a slot (the call's deadline
	// also bounds it). Zero: DefaultMaxWait.
	MaxWait time.Duration
	// ReserveOutput is the number of output tokens reserved against a
	// tokens-per-minute limit for a request without max_tokens, settled
	// with the provider's usage after the call. Zero: DefaultReserveOutput.
	ReserveOutput int64
	// NoLearning stops admissions from following what the provider
	// reports (x-ratelimit-* headers, a 429's Retry-After). False: they do.
	NoLearning bool
	// KeyPrefix prefixes the keys of a shared store. Empty:
	// DefaultKeyPrefix.
	KeyPrefix string
	// LeaseTTL frees a concurrency slot never released (a crashed
	// replica); set it above your longest call. Zero: DefaultLeaseTTL.
	LeaseTTL time.Duration
	// OnUnavailable is the reaction to a store that cannot be reached.
	// Zero: FailClosed.
	OnUnavailable OnUnavailable
	// LocalFraction in (0,1] is the share of each limit a replica admits
	// alone while the store is unreachable (OnUnavailable Local). Zero:
	// DefaultLocalFraction.
	LocalFraction float64
}

// ModelLimit is a model's provider limits. A zero field is no limit.
type ModelLimit struct {
	// RPM caps requests per minute.
	RPM int64
	// TPM caps tokens (input estimate plus reserved output) per minute.
	TPM int64
	// MaxConcurrent caps the calls in flight.
	MaxConcurrent int
	// Burst is the span of the per-minute limits that may be spent at once
	// (providers enforce per-minute limits over shorter periods), at most
	// a minute. Zero: 1s, i.e. RPM/60 requests at once.
	Burst time.Duration
}

// TeamShare is a team's share of each limited model: a Weight (its part of
// the sum of the weights of the teams listed) and/or absolute caps. The
// smaller applies. A zero field is not used.
type TeamShare struct {
	// Weight is the team's relative share.
	Weight float64
	// RPM caps the team's requests per minute on each model.
	RPM int64
	// TPM caps the team's tokens per minute on each model.
	TPM int64
	// MaxConcurrent caps the team's calls in flight on each model.
	MaxConcurrent int
}

// Enabled reports whether any model is rate limited.
func (c Config) Enabled() bool { return len(c.Models) > 0 }

// validate returns every problem of c, joined, each matching ErrConfig.
func (c Config) validate() error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...))
	}
	for _, name := range slices.Sorted(maps.Keys(c.Models)) {
		m := c.Models[name]
		if m.RPM < 0 || m.TPM < 0 || m.MaxConcurrent < 0 || m.Burst < 0 || m.Burst > time.Minute {
			add("model %q: negative limit or burst outside [0, 1m]: %+v", name, m)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Teams)) {
		t := c.Teams[name]
		if t.Weight < 0 || t.RPM < 0 || t.TPM < 0 || t.MaxConcurrent < 0 {
			add("team %q: negative share: %+v", name, t)
		}
	}
	switch c.OnLimit {
	case "", OnLimitWait, OnLimitReject, OnLimitFallback:
	default:
		add("unknown OnLimit %q", c.OnLimit)
	}
	switch c.OnUnavailable {
	case "", FailClosed, Local:
	default:
		add("unknown OnUnavailable %q", c.OnUnavailable)
	}
	if c.MaxWait < 0 || c.ReserveOutput < 0 || c.LeaseTTL < 0 {
		add("negative MaxWait (%v), ReserveOutput (%d) or LeaseTTL (%v)", c.MaxWait, c.ReserveOutput, c.LeaseTTL)
	}
	if c.LocalFraction < 0 || c.LocalFraction > 1 {
		add("LocalFraction %g not in [0, 1]", c.LocalFraction)
	}
	return errors.Join(errs...)
}
