// Package timeout is a layer of the chain that bounds LLM calls: the whole
// call, the wait for the first streamed chunk, and the gap between two
// chunks; and, outside the retries and fallbacks, the call as its caller
// sees it, all attempts included (Config.Total, [Timeout.TotalMiddleware];
// [Timeout.ExtendableTotalMiddleware] for a total that an attempt of a
// model allowed a longer one extends, see [Timeout.ExtendingMiddleware]).
// Every timeout error is a [*middleware.DeadlineError] that matches
// context.DeadlineExceeded, middleware.ErrTimeout and this package's
// sentinel for the limit that fired ([ErrCall], [ErrFirstToken], [ErrIdle],
// [ErrTotal]), so a retry or a fallback treats it as transient and callers
// can tell the limits apart.
//
// Every tokenwise layer is built the same way: New(Config, ...Option)
// returns a *Timeout whose Middleware method gives the
// middleware.Middleware. Config is plain data whose zero fields are
// documented defaults or "off" (as gobreaker's Settings), so the layer is
// usable without a policy file; package llmwrap maps a policy's section to
// it. Options are functional options (as in connect-go and go-kit) for
// code-side dependencies (none yet for this layer) only, never policy data.
//
// The run's own deadline is the run guard's (package guard); in the default
// onion (see package llmwrap) this layer is the innermost and bounds one
// attempt against one model; the total limit's sits right inside the run
// guard and bounds the whole call, every attempt of the fallback chain,
// as the run deadline bounds the whole run.
package timeout
