// Package fallback is a layer of the chain that runs a call against an
// ordered chain of models: the requested model first, then the configured
// fallback models, each tried at most once per call (a model is never tried
// twice, so a chain cannot loop).
//
// Every tokenwise layer is built the same way: New(Config, ...Option)
// returns a *Fallback whose Middleware method gives the
// middleware.Middleware. Config is plain data whose zero fields are
// documented defaults or "off" (as gobreaker's Settings), so the layer is
// usable without a policy file; package llmwrap maps a policy's section to
// it. Options are functional options (as in connect-go and go-kit) for
// code-side dependencies (an input estimate) only, never policy data.
//
// Which failures move on is configurable ([Config.On]); by default rate
// limits (and exhausted quotas), unavailable providers, timeouts, network
// failures, cut streams, malformed answers, open circuit breakers and
// context-window errors do, while bad requests, auth failures, content
// filters, budget refusals and cancellations end the call. A context-window
// error only moves on to a model with a larger window ([WithWindows]),
// the configured fallback models first, then [Config.LargerWindow].
//
// A streaming call falls back only while no chunk has reached the caller;
// after that its failure is returned to the caller (never as a normal end),
// with the partial response so that what was produced is billed.
//
// Every provider attempt is recorded (and priced, once) in the call's
// CallFacts.Attempts by middleware.Meter at the bottom of the chain; a
// hedged attempt runs under middleware.WithHedgedAttempt so that it is
// recorded as one. Every move to the next model emits a
// [middleware.FellBack] event, and when more than one model was tried and
// the call still failed, the error is one [*Error] that lists each attempt
// and matches each attempt's error with errors.Is and errors.As.
//
// A budget above the layer (composed by hand, or around a built chain)
// is told of each attempt (middleware.NoteAttempt) and asked to admit
// each attempt after the call's first — another model, a hedge — before
// it is sent (middleware.AdmitAttempt): a refusal (a ledger that cannot
// hold a dearer model's worst case) ends the chain, listed in the
// [*Error].
//
// The whole chain runs under the caller's context: one deadline (the run
// guard's) bounds every attempt together; per-attempt limits are the
// timeout layer's.
//
// # Hedging
//
// With [Config.Hedge] on, a non-streaming call that the first model has not
// answered after a delay (fixed, or a percentile of the model's recent
// latencies, whichever is smaller) is sent to the next model too — or, when
// there is no other model, to the same model again (a second connection,
// usually another replica: hedging with one model is never a no-op). The
// first successful answer wins, the other attempt is cancelled and waited
// for, and both are billed: the loser with its partial usage if it
// reported one, else with an estimate of its input tokens, since a
// provider bills a prompt it received. Streaming calls are not hedged.
package fallback
