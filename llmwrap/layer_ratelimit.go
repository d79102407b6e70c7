package llmwrap

import (
	"errors"

	"github.com/tokenwise/tokenwise/llmwrap/ratelimit"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// WithRateLimitStore sets the store of the rate limits' state, e.g. a
// shared Redis store (adapters/redis.NewRateLimitStore). Default: in
// memory. A policy with rate_limits.store.kind redis requires it.
func WithRateLimitStore(s ratelimit.Store) Option {
	return func(o *options) { o.rateLimitStore = s }
}

// WithRateLimitOptions passes options to the rate limit layer (its
// estimator, the state of its local share: ratelimit.WithLocalStore).
func WithRateLimitOptions(opts ...ratelimit.Option) Option {
	return func(o *options) { o.rateLimitOpts = append(o.rateLimitOpts, opts...) }
}

// rateLimitLayer admits each call against the limits of the model it is
// sent to: under the fallback (a fallback target is admitted against its
// own limits) and the budget, above the breaker (a refusal is not a
// failure of the model) and the retry.
func rateLimitLayer(p *policies.Policy, o *options) (middleware.Middleware, error) {
	if !p.RateLimits.Enabled() {
		return nil, nil
	}
	opts := []ratelimit.Option{ratelimit.WithLogger(o.logger), ratelimit.WithEstimator(o.estimator())}
	if p.RateLimits.Store.OnUnavailable == policies.UnavailableLocal {
		// Kept in the build's State: a registry's reload does not give
		// back the local share admitted while the store is down.
		opts = append(opts, ratelimit.WithLocalStore(o.state.rateLimitLocalMemory()))
	}
	if s := o.rateLimitStore; s != nil {
		opts = append(opts, ratelimit.WithStore(s))
	} else if p.RateLimits.Store.Kind == policies.StoreRedis {
		return nil, errors.New("tokenwise/llmwrap: rate_limits.store.kind is redis: pass the store with llmwrap.WithRateLimitStore(redis.NewRateLimitStore(client))")
	} else {
		// Kept in the build's State: a registry's reload keeps the slots
		// already taken.
		opts = append(opts, ratelimit.WithStore(o.state.rateLimitMemory()))
	}
	opts = append(opts, o.rateLimitOpts...)
	l, err := ratelimit.New(rateLimitConfig(p), opts...)
	if err != nil {
		return nil, err
	}
	return l.Middleware(), nil
}
