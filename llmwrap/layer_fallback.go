package llmwrap

import (
	"github.com/tokenwise/tokenwise/llmwrap/fallback"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// fallbackLayer builds the fallback chain from policy.fallback (models, on,
// hedge) and routing.larger_window; context windows come from the model
// specs. An open breaker always moves on to the next model.
func fallbackLayer(p *policies.Policy, _ *options) (middleware.Middleware, error) {
	f, err := fallback.New(fallbackConfig(p), fallback.WithWindows(windows(p)), fallback.WithMaxOutput(maxOutputs(p)))
	if err != nil {
		return nil, err
	}
	return f.Middleware(), nil
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
