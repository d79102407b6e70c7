package llmwrap

import (
	"github.com/tokenwise/tokenwise/llmwrap/timeout"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// totalLayer bounds a call with all its attempts (timeouts.total, that of
// the model the caller asked for when timeouts.models gives it one):
// right inside the run guard, outside the cache, router, fallbacks and
// retries, where a call's model is still its caller's. A total shorter
// than another model's is extended by each attempt of a model allowed a
// longer one (see timeoutLayer): the total follows the model that
// answers, and is never shorter than the one of the model the caller
// asked for.
func totalLayer(p *policies.Policy, _ *options) (middleware.Middleware, error) {
	longest := longestTotal(p.Timeouts).Duration()
	return perModel(p, func(l *timeout.Timeout) middleware.Middleware { return l.ExtendableTotalMiddleware(longest) })
}
