package llmwrap

import (
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// breakerLayer builds one circuit breaker per model from
// policy.fallback.breaker; the breakers live as long as the built chain.
func breakerLayer(p *policies.Policy, o *options) (middleware.Middleware, error) {
	cfg := breakerConfig(p)
	// Breakers keep their state across a registry's reload while the
	// config stays the same.
	set, err := o.state.breakerSet(cfg)
	if err != nil {
		return nil, err
	}
	return set.Middleware(), nil
}
