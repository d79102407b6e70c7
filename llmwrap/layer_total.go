package llmwrap

import (
	"github.com/tokenwise/tokenwise/llmwrap/timeout"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// totalLayer bounds a call with all its attempts (timeouts.total, that of
// the model the caller asked for when timeouts.models gives it one):
// right inside the run guard, outside the cache, router, fallbacks and
// retries, where a call's model is still its caller's.
func totalLayer(p *policies.Policy, _ *options) (middleware.Middleware, error) {
	return perModel(p, (*timeout.Timeout).TotalMiddleware)
}
