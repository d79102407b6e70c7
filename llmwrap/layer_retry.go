package llmwrap

import (
	"github.com/tokenwise/tokenwise/llmwrap/retry"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// retryLayer builds the retry layer from policy.fallback.retry.
func retryLayer(p *policies.Policy, _ *options) (middleware.Middleware, error) {
	r := p.Fallback.Retry
	return retry.New(retry.Policy{
		MaxAttempts:  r.MaxAttempts,
		BaseDelay:    r.BaseDelay.Duration(),
		MaxDelay:     r.MaxDelay.Duration(),
		MaxTotalWait: r.MaxTotalWait.Duration(),
	}), nil
}
