package llmwrap

import (
	"github.com/tokenwise/tokenwise/llmwrap/breaker"
	"github.com/tokenwise/tokenwise/llmwrap/fallback"
	"github.com/tokenwise/tokenwise/llmwrap/ratelimit"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// fallbackLayer builds the fallback chain from policy.fallback (models, on,
// hedge) and routing.larger_window; context windows come from the model
// specs. An open breaker always moves on to the next model.
func fallbackLayer(p *policies.Policy, _ *options) (middleware.Middleware, error) {
	f := p.Fallback
	classes := f.On
	if len(classes) == 0 {
		classes = policies.DefaultFallbackOn()
	}
	// A rate limit's refusal with on_limit fallback always moves on; one
	// with reject (or a wait that could not end in time) never does.
	on := []error{breaker.ErrOpen, ratelimit.ErrMoveOn}
	for _, c := range classes {
		on = append(on, classErrors(c)...)
	}
	cfg := fallback.Config{
		Models:       f.Models,
		On:           on,
		Stop:         []error{ratelimit.ErrRejected},
		LargerWindow: p.Routing.LargerWindow,
		Window: func(model string) (int64, bool) {
			spec, ok := p.Model(model)
			return spec.ContextWindow, ok && spec.ContextWindow > 0
		},
	}
	if h := f.Hedge; h.Enabled {
		cfg.Hedge = fallback.Hedge{Delay: h.Delay.Duration(), Percentile: h.Percentile}
	}
	return fallback.New(cfg), nil
}

// classErrors maps a policy error class to the core errors it covers.
func classErrors(c policies.ErrorClass) []error {
	switch c {
	case policies.ClassRateLimited:
		return []error{middleware.ErrRateLimited, middleware.ErrQuotaExceeded}
	case policies.ClassUnavailable:
		return []error{middleware.ErrUnavailable, middleware.ErrMalformed}
	case policies.ClassTimeout:
		return []error{middleware.ErrTimeout}
	case policies.ClassNetwork:
		return []error{middleware.ErrNetwork, middleware.ErrStreamCut}
	case policies.ClassContextWindow:
		return []error{middleware.ErrContextWindow}
	case policies.ClassBudget:
		return []error{middleware.ErrBudget}
	case policies.ClassContentFilter:
		return []error{middleware.ErrContentFilter}
	case policies.ClassAuth:
		return []error{middleware.ErrAuth}
	case policies.ClassBadRequest:
		return []error{middleware.ErrBadRequest}
	}
	return nil
}
