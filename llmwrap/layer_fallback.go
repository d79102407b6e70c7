package llmwrap

import (
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// fallbackLayer builds the fallback layer. Not built yet: the layer is off.
func fallbackLayer(p *policies.Policy, o *options) (middleware.Middleware, error) {
	return nil, nil
}
