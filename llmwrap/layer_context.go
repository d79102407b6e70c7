package llmwrap

import (
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// contextLayer builds the context layer. Not built yet: the layer is off.
func contextLayer(p *policies.Policy, o *options) (middleware.Middleware, error) {
	return nil, nil
}
