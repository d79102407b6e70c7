package llmwrap

import (
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// retryLayer builds the retry layer. Not built yet: the layer is off.
func retryLayer(p *policies.Policy, o *options) (middleware.Middleware, error) {
	return nil, nil
}
