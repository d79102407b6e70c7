package llmwrap

import (
	"github.com/tokenwise/tokenwise/llmwrap/breaker"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// breakerLayer builds one circuit breaker per model from
// policy.fallback.breaker; the breakers live as long as the built chain.
func breakerLayer(p *policies.Policy, _ *options) (middleware.Middleware, error) {
	b := p.Fallback.Breaker
	return breaker.New(breaker.Settings{
		ConsecutiveFailures: b.ConsecutiveFailures,
		FailureRatio:        b.FailureRatio,
		MinRequests:         b.MinRequests,
		OpenFor:             b.OpenFor.Duration(),
		HalfOpenProbes:      b.HalfOpenProbes,
		Window:              b.Window.Duration(),
	}).Middleware(), nil
}
