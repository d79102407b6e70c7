package llmwrap

import (
	"github.com/sony/gobreaker/v2"

	"github.com/tokenwise/tokenwise/llmwrap/breaker"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

type breakerStoreKey struct{}

// WithBreakerStore shares the circuit breakers' state through st (e.g.
// adapters/redis.NewBreakerStore), so that a breaker opened by one replica
// is open in every replica using the same store. Default: in this process.
func WithBreakerStore(st gobreaker.SharedDataStore) Option {
	return func(o *options) { o.set(breakerStoreKey{}, st) }
}

// breakerLayer builds one circuit breaker per model from
// policy.fallback.breaker; the breakers live as long as the built chain.
func breakerLayer(p *policies.Policy, o *options) (middleware.Middleware, error) {
	b := p.Fallback.Breaker
	settings := breaker.Settings{
		ConsecutiveFailures: b.ConsecutiveFailures,
		FailureRatio:        b.FailureRatio,
		MinRequests:         b.MinRequests,
		OpenFor:             b.OpenFor.Duration(),
		HalfOpenProbes:      b.HalfOpenProbes,
		Window:              b.Window.Duration(),
	}
	// Breakers keep their state across a registry's reload while the
	// settings stay the same.
	var opts []breaker.Option
	if st, ok := o.get(breakerStoreKey{}).(gobreaker.SharedDataStore); ok && st != nil {
		opts = append(opts, breaker.WithSharedStore(st))
	}
	set := o.shared(settings, func() any { return breaker.New(settings, opts...) }).(*breaker.Set)
	return set.Middleware(), nil
}
