package llmwrap

import (
	"github.com/tokenwise/tokenwise/llmwrap/breaker"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

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
	set := o.shared(settings, func() any { return breaker.New(settings) }).(*breaker.Set)
	return set.Middleware(), nil
}
