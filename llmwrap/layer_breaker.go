package llmwrap

import (
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// breakerLayer builds the breaker layer. Not built yet: the layer is off.
func breakerLayer(p *policies.Policy, o *options) (middleware.Middleware, error) {
	return nil, nil
}
