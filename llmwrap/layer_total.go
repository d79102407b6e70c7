package llmwrap

import (
	"github.com/tokenwise/tokenwise/llmwrap/timeout"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// totalLayer bounds a call with all its attempts (timeouts.total): right
// inside the run guard, outside the cache, router, fallbacks and retries.
func totalLayer(p *policies.Policy, _ *options) (middleware.Middleware, error) {
	t, err := timeout.New(timeoutConfig(p))
	if err != nil {
		return nil, err
	}
	return t.TotalMiddleware(), nil
}
