package llmwrap

import (
	"github.com/tokenwise/tokenwise/llmwrap/breaker"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// WithBreakerStore shares the circuit breakers' open state through st
// (e.g. adapters/redis.NewBreakerStore), so that a breaker opened by one
// replica is open in every replica using the same store (see
// breaker.WithSharedStore). Default: in this process.
func WithBreakerStore(st breaker.SharedStore) Option {
	return func(o *options) { o.breakerStore = st }
}

// breakerLayer builds one circuit breaker per model from
// policy.fallback.breaker; the breakers live as long as the built chain.
func breakerLayer(p *policies.Policy, o *options) (middleware.Middleware, error) {
	cfg := breakerConfig(p)
	// Breakers keep their state across a registry's reload while the
	// config stays the same.
	var opts []breaker.Option
	if o.breakerStore != nil {
		opts = append(opts, breaker.WithSharedStore(o.breakerStore))
	}
	set, err := o.state.breakerSet(cfg, opts...)
	if err != nil {
		return nil, err
	}
	return set.Middleware(), nil
}
