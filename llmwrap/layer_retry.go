package llmwrap

import (
	"github.com/tokenwise/tokenwise/llmwrap/retry"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// retryLayer builds the retry layer from policy.fallback.retry.
func retryLayer(p *policies.Policy, _ *options) (middleware.Middleware, error) {
	r, err := retry.New(retryConfig(p))
	if err != nil {
		return nil, err
	}
	return r.Middleware(), nil
}
