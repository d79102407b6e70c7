// Package breaker is a layer of the chain: a circuit breaker per model,
// built on sony/gobreaker/v2's TwoStepCircuitBreaker: a call is admitted
// first and judged when Handle returns, so a stream is judged when it ends.
//
// Every tokenwise layer is built the same way: New(Config, ...Option)
// returns a *Set whose Middleware method gives the middleware.Middleware.
// Config is plain data whose zero fields are documented defaults or "off"
// (as gobreaker's Settings), so the layer is usable without a policy file;
// package llmwrap maps a policy's section to it. Options are functional
// options (as in connect-go and go-kit) for code-side dependencies (a
// [SharedStore] through which replicas share their breakers' open state,
// [WithSharedStore]) only, never policy data.
//
// A breaker trips after ConsecutiveFailures failures in a row, or when the
// failure ratio over a rolling Window reaches FailureRatio once MinRequests
// calls were seen. An open breaker refuses calls at once with an
// [*OpenError] (matching [ErrOpen]) for OpenFor; then HalfOpenProbes trial
// calls are let through, and their success closes it again.
//
// What counts: failures are the errors that say the model is unhealthy
// (middleware.Transient: rate limits, 5xx, timeouts, network failures,
// cut streams) and malformed answers. A client error (bad request, auth,
// context window, content filter) is the request's fault, not the model's,
// and counts as a success. A cancellation, a budget refusal, any failure
// that happened because the caller's own context ended (the run
// deadline, a hedge that lost), and a call that panicked (the provider's
// code, the caller's stream func) are not counted at all: a half-open
// breaker's probe that panicked gives its slot to the next call.
//
// State changes are emitted as middleware.BreakerChanged events, after the
// breaker's lock is released.
//
// A breaker whose trip rule is consecutive failures only (FailureRatio
// zero) does not report to gobreaker a success or an uncounted call that
// ends while it is closed and counts no failure in its window: gobreaker
// would only count it in figures that rule does not read, so a healthy
// model's calls take gobreaker's lock once each (to be admitted) instead
// of twice. Its admissions, refusals, half-open probes and state changes
// are exactly gobreaker's (a differential test checks them against a
// plain gobreaker breaker over random sequences).
package breaker
