// Package retry is a layer of the chain that retries transient failures of
// an LLM call on the same model: rate limits, unavailable providers,
// timeouts, network failures and streams cut before their first chunk (see
// middleware.Transient). Everything else is returned at once: a bad request,
// an auth failure, a context-window error, a budget refusal, a cancellation,
// and a 429 insufficient_quota, which no wait can fix.
//
// Every tokenwise layer is built the same way: New(Config, ...Option)
// returns a *Retry whose Middleware method gives the middleware.Middleware.
// Config is plain data whose zero fields are documented defaults or "off"
// (as gobreaker's Settings), so the layer is usable without a policy file;
// package llmwrap maps a policy's section to it. Options are functional
// options (as in connect-go and go-kit) for code-side dependencies (a jitter
// source) only, never policy data.
//
// Waits use exponential backoff with full jitter (a uniform draw in
// [0, min(MaxDelay, BaseDelay·2^(n-1)))) unless the provider asked for a
// wait with Retry-After (seconds or an HTTP date) or retry-after-ms (or,
// without them, OpenRouter's X-RateLimit-Reset epoch in milliseconds when
// no request is left, or the retryDelay of a google.rpc.RetryInfo in the
// error body: Gemini's 429 RESOURCE_EXHAUSTED), which is honoured exactly. A wait that would end after the call's deadline, or
// push the call's total wait past MaxTotalWait, is not started: the last
// error is returned at once, so that a fallback can move on immediately
// instead of sleeping into a timeout.
//
// A streaming call is retried only while no chunk has reached the caller;
// after that a failure is the caller's to see. The chunks of a stream a
// layer above holds back (the router's draft, middleware.WithStreamHeld)
// reach no caller.
//
// A retry is made only when the call's admission allows it, asked after
// the wait, as the retry is sent (middleware.AdmitRetry: the budget layer
// above refuses one its ledgers cannot hold; the rate limits admit it as
// a request of its own, waiting for its slot or refusing it); otherwise
// the last failure is returned. Every retry made emits a
// middleware.Retrying event as it is sent, after its wait and its
// admission: a retry refused (or cut short by the call's end) emits none,
// so that the events (the OTel retries counter, the logs) count the
// retries that went out, as the call's facts (CallFacts.Retries) do.
//
// Each attempt is noted to a budget above (middleware.MarkAttempt and
// middleware.NoteAttempt), which charges it what the provider billed it
// even when no Meter below records it (a budget composed by hand above
// the retry layer).
package retry
