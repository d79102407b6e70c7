package llmwrap

import (
	"github.com/tokenwise/tokenwise/llmwrap/breaker"
	"github.com/tokenwise/tokenwise/llmwrap/fallback"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// Resilience is a policy's fallback section (models, on, retry, breaker)
// as layers for calls its caller sends itself, outside a chain: the
// gateway's Responses calls, which it passes to the upstream as they came.
// The caller puts its own per-model step (e.g. the reservation of that
// model's budget) between Fallback and Breakers, as the chain has its
// budget and rate-limit layers there, and its sender under Retry; the
// requests the layers see need only their Model. A nil field is a layer
// the policy leaves off.
type Resilience struct {
	// Fallback moves a failed call on to the next of fallback.models (and
	// of routing.larger_window after a context-window error), on the
	// errors fallback.on names, an open breaker and a rate limit's
	// on_limit: fallback, as the chain's fallback layer does; it does not
	// hedge.
	Fallback middleware.Middleware
	// Hedged is Fallback with the policy's fallback.hedge (nil when the
	// policy does not hedge): for calls whose first model may be sent a
	// second time alongside (not streams). Its attempts run concurrently:
	// a hedged one under middleware.WithHedgedAttempt, and the one that
	// loses is cancelled with fallback.ErrHedgeLost.
	Hedged middleware.Middleware
	// Breakers guards each model's calls with that model's breaker.
	Breakers middleware.Middleware
	// Retry retries a model's transient failures (fallback.retry).
	Retry middleware.Middleware
	// Observer is the registry's observers (nil: none), for the caller to
	// put in its calls' context (middleware.WithObserver): the layers
	// report their fallbacks, retries and breaker changes to it.
	Observer middleware.Observer
}

// Resilience returns the Resilience of policy p. Its breakers are the
// registry's chains' own: one breaker per model and breaker config, so a
// breaker a chat call opened is open for these calls too (and, with
// WithBreakerStore, for every replica's), and the other way round.
func (r *Registry) Resilience(p *policies.Policy) (*Resilience, error) {
	o := &options{}
	for _, opt := range r.opts {
		opt(o)
	}
	cfg := fallbackConfig(p)
	var hedged middleware.Middleware
	if cfg.Hedge != (fallback.Hedge{}) {
		h, err := fallback.New(cfg, fallback.WithWindows(windows(p)), fallback.WithMaxOutput(maxOutputs(p)))
		if err != nil {
			return nil, err
		}
		hedged = h.Middleware()
	}
	cfg.Hedge = fallback.Hedge{}
	f, err := fallback.New(cfg, fallback.WithWindows(windows(p)), fallback.WithMaxOutput(maxOutputs(p)))
	if err != nil {
		return nil, err
	}
	var bopts []breaker.Option
	if o.breakerStore != nil {
		bopts = append(bopts, breaker.WithSharedStore(o.breakerStore))
	}
	set, err := r.state.breakerSet(breakerConfig(p), bopts...)
	if err != nil {
		return nil, err
	}
	retry, err := retryLayer(p, o)
	if err != nil {
		return nil, err
	}
	return &Resilience{Fallback: f.Middleware(), Hedged: hedged, Breakers: set.Middleware(), Retry: retry, Observer: r.obs}, nil
}
