// Package ratelimit is a layer of the chain that admits LLM calls before the
// provider's own rate limits would refuse them: requests and tokens per
// minute and concurrent calls per model, each team's share of them, shared
// by replicas through a [Store], and slowed down by what the provider
// reports.
//
// Every tokenwise layer is built the same way: New(Config, ...Option)
// returns a *Limiter whose Middleware method gives the
// middleware.Middleware. Config is plain data whose zero fields are
// documented defaults or "off" (as gobreaker's Settings), so the layer is
// usable without a policy file; package llmwrap maps a policy's section to
// it. Options are functional options (as in connect-go and go-kit) for
// code-side dependencies (the store, a token estimator, a logger) only,
// never policy data.
//
// # Limits
//
// Each per-minute limit is a GCRA cell (generic cell rate algorithm): one
// theoretical arrival time per limit; a call of cost n conforms when
// max(tat, now) + n·interval − now ≤ tolerance, where interval is a
// minute over the limit and tolerance the policy's burst (default 1s, as
// providers quantise per-minute limits). A call admits against every cell
// of its model and team at once — all or none. Tokens are reserved at the
// input estimate (exact for OpenAI encodings, shared with the budget
// layer) plus max_tokens (or [Config.ReserveOutput]) and settled with
// the usage the provider reports: the difference is charged or refunded by
// moving the cell's arrival time. Concurrency caps are leases, released
// when the call ends (with a TTL against crashed replicas).
//
// Why our own GCRA rather than golang.org/x/time/rate: settlement moves a
// token cell both ways after the call (x/time/rate can only cancel a whole
// reservation), the in-memory and the Redis store must behave the same
// (one Lua script implements the same arithmetic), several cells must be
// checked and committed atomically, and the provider's reports become
// cells of their own. A GCRA is one integer per limit; a local admission
// takes one lock and one clock read and allocates nothing.
//
// # Waiting, rejecting, falling back
//
// With on_limit wait (the default) a call reserves its slot up to
// max_wait ahead (bounded by its deadline) and sleeps until then: one
// store round trip, first come first served. A slot is reserved ahead only
// when every limit of the call is busy until then — reserving it in a
// limit that would be free earlier (the model's, while the team's share is
// the bottleneck) would waste that limit and starve other teams; such a
// call, and one waiting for a concurrency slot, asks again at the time it
// was given. A call that cannot be admitted in time is refused with an
// [*Error] matching middleware.ErrRateLimited and [ErrRejected], whose
// RetryAfter (middleware.RetryAfter) is the time to wait. on_limit reject
// refuses at once; on_limit fallback refuses with [ErrMoveOn], which the
// fallback chain treats as "next model" (admitted against that model's own
// limits), while [ErrRejected] never falls back.
//
// # Team shares
//
// [Config.Teams] gives a team a weight (its part of the sum of the
// weights) and/or absolute caps of every limited model; "*" is the share
// of each team not listed. A team's share is a cell of its own, checked
// with the model's: a greedy team queues behind its share and cannot
// starve the others.
//
// # Learning from the provider
//
// The OpenAI adapter reports x-ratelimit-limit-*, -remaining-* and
// -reset-* headers and every 429 (middleware.ProviderLimits). A 429's
// Retry-After pauses admissions for the model (at most a minute, however
// long it asks: one call a minute then probes the provider); a limit with a tenth or
// less left becomes a cell that mirrors the provider's own state
// (remaining of limit, refilled at limit per minute), so admissions slow
// down before the next 429. With a shared store this is shared: one
// replica's 429 holds the others.
//
// # Retries
//
// Each retry below this layer is admitted when it is sent, as a first
// attempt is (middleware.AdmitRetry, after what admits the call's retries
// above it: the budget's): one request of the requests per minute and the
// call's tokens of the tokens per minute, waiting for its slot (never past
// the call's deadline) or refused, in which case the provider's failure
// stands. It takes no concurrency slot (the call holds one). When the
// call ends, each request that failed is settled at its input, the last
// one at the provider's usage; requests the layer did not admit (the
// attempts middleware.Meter saw, middleware.CountAttempts, or the
// provider's reports of them, whichever is more) are charged then.
//
// # Where it runs
//
// llmwrap.Build places the layer under the fallback (each target model
// is admitted against its own limits) and the budget, above the circuit
// breaker (a refusal is not a failure of the model) and the retry.
// Events (middleware.RateLimited), OpenTelemetry metrics (adapters/otel)
// and the run report show waits and refusals.
package ratelimit
