package llmwrap

import (
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// routeLayer builds the route layer. Not built yet: the layer is off.
func routeLayer(p *policies.Policy, o *options) (middleware.Middleware, error) {
	return nil, nil
}
