package llmwrap

import (
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// cacheLayer builds the cache layer. Not built yet: the layer is off.
func cacheLayer(p *policies.Policy, o *options) (middleware.Middleware, error) {
	return nil, nil
}
