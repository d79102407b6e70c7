// Package budget is a layer of the chain that enforces token and money
// budgets on LLM calls and never lets a hard limit be overshot, whatever the
// concurrency.
//
// Every tokenwise layer is built the same way: New(Config, ...Option)
// returns a *Budget whose Middleware method gives the middleware.Middleware.
// Config is plain data whose zero fields are documented defaults or "off"
// (as gobreaker's Settings), so the layer is usable without a policy file;
// package llmwrap maps a policy's section to it. Options are functional
// options (as in connect-go and go-kit) for code-side dependencies (the
// store, the model Catalog, a clock, a token estimator, a logger) only,
// never policy data.
//
// # Scopes
//
//   - Per request: the estimated input (package tokens) is checked against
//     budget.request.max_input_tokens before the call, and max_tokens is
//     injected when the request sets none (or capped when larger), so the
//     worst case of every call is bounded.
//   - Per run (middleware.StartRun): tokens and USD, in a ledger kept in
//     the run (middleware.RunValue); for a run shared by several
//     processes (middleware.OpenSharedRun), in the [Store] under the run's
//     key ([Budget.RunKey]), kept for the run's idle time, so that every
//     process charges one ledger. Calls and wall time of a run are
//     enforced by the run guard (llmwrap/guard), which reads the same
//     budget.run section.
//   - Per team per period: daily or monthly (calendar, UTC) or a rolling
//     window, in USD and tokens, in a [Store] shared by the replicas.
//
// # Reserve, then settle
//
// Before the call the layer reserves the worst case, priced at the model in
// the request — at the dearest of it and the snapshots its answer may be
// billed as ([Model].AnswerModels: a call for gpt-4o at
// gpt-4o-2024-05-13's price), so that the settlement, priced at the model
// that answered, stays within it: the estimated input (images by the called model's vision
// rule at their detail's worst case, tool definitions; on a model whose
// prompt-cache writes are dearer than its input, all of it at the
// cache-write rate) plus the output bound for every one of n choices. It sits under the fallback layer (see
// llmwrap), so every fallback target is reserved at its own price. When a
// run or team budget cannot afford the output bound but affords at least
// [Config.MinOutputTokens] (DefaultMinOutputTokens), max_tokens is lowered
// to what it affords (a note in the call's facts, a BudgetExceeded event
// with action "fit"). After the call it settles what the provider reported
// (priced by the [Catalog] at the model that answered, by the Meter's rule
// middleware.BilledModel; with a policy's catalog cached input at the
// cached rate, reasoning as output) at its exact cost ([Exact]: whole
// micro-dollars and the pico-dollars left over), which every Store sums
// exactly, rounding a ledger's total up to a micro-dollar once, when it is
// read. It does not write the call's cost: middleware.Meter records
// and prices each provider attempt. A failure without a response (a
// provider's error, a refusal) and a panic release the reservation (a
// stream whose callback panicked after a chunk is charged what the Meter
// billed it: its input and what it streamed); an
// attempt cancelled or timed out, retried or the call's last, is charged
// what the Meter bills it (its estimated input: the provider usually bills
// a prompt it processed), and before a retry (middleware.AdmitRetry) what
// the failed attempts were billed is reserved beside the call's worst
// case, the retry refused when a ledger cannot hold it; a cut stream (a partial
// response with middleware.ErrStreamCut) is billed, from its usage or, when
// it has none, from the estimated input and the tokens of the partial
// output (BilledUsage, the same counts the Meter bills), and so is an
// answer cut after its 2xx status (a *middleware.AnswerCutError: the
// provider billed it), at its estimated input and the output its body
// read holds, and a whole 2xx answer that is malformed (a
// *middleware.AnswerMalformedError: not JSON, no choices, a member of the
// wrong type), at its estimated input — by this layer itself when no
// middleware.Meter below it recorded the attempt (its Middleware composed
// without the chain's meter), as is an attempt cancelled or timed out
// after its request was sent (middleware.UnansweredBilled). An estimated output never passes
// max_tokens per choice (middleware.CapOutput), what the provider can bill
// and the call reserved. A usage with a
// negative count, or one beyond middleware.MaxCount (2^50 tokens;
// middleware.Usage.Implausible: no provider's count), is billed as none
// (the estimate), never settled as given.
//
// A budget's Middleware composed by hand above a retry or fallback layer
// (or around a built chain) reserves the call once while they send several
// attempts: they tell it of each (middleware.MarkAttempt,
// middleware.NoteAttempt: the call's context carries the budget as a
// middleware.AttemptNoter), with what a Meter below recorded of it or,
// without one, by the Meter's rule (middleware.AttemptUsage), and the call
// is settled at the sum, as a budget below them charges each request
// sent: a hedged call's answer once, and the attempt that lost. Before a retry it reserves what the failed attempts were billed
// (and passes the admission on to a budget above); before a fallback to
// another model or a hedge (middleware.AdmitAttempt) it reserves, beside
// that, what the new model's worst case needs beyond the call's
// reservation, and refuses the attempt when a ledger cannot hold it: a
// dearer model's answer never overshoots a limit.
//
// Reserve is atomic in every store (a mutex in memory, one Lua script in
// Redis), so check-then-charge races cannot overspend: the settled spend
// stays within the limit as long as the provider's usage stays within the
// reservation, which holds for OpenAI encodings (exact input counts,
// output bounded by max_tokens). Non-OpenAI models are estimated
// conservatively (package tokens). A reservation in a shared store carries
// a TTL (budget.store.reservation_ttl, default the larger of 2m and
// timeouts.call; a shorter one than timeouts.call does not load) and the
// layer extends it every third of the TTL while the call is in flight
// ([Extender]). A reservation that expires anyway — its replica died — is
// charged at its reserved amount, not released: the provider may have
// billed the call.
//
// A run's ledger lives in the run, one per run (not per policy name), so a
// Budget rebuilt by a policy reload, one that renames the policy too, keeps
// charging it; a shared run's lives in the store under the run's key
// ([Budget.RunKey]: the run's, not its policy's), with the same effect in
// every process. What an earlier version kept under the policy's name
// still counts.
//
// # When a budget says no
//
// [OnExceedReject] (the default [Config.OnExceed]) fails the call with an
// *ExceededError (errors.Is matches ErrExceeded and middleware.ErrBudget);
// [OnExceedDowngrade] retries the admission with [Config.DowngradeTo] and
// rejects if that does not fit either; [OnExceedWarn] lets the call
// through, records its spend, logs and emits middleware.BudgetExceeded. A USD budget over a model with no price
// refuses the call (ErrUnpriced) instead of billing $0; New refuses a USD
// limit without a Catalog, and a policy's validation already rejects an
// unpriced model it names at load time.
//
// Soft limits ([Config.WarnAt]) fire middleware.BudgetWarning through slog
// and the observers, once per window and fraction (across replicas for a
// shared store). With them, a team budget of a daily or monthly period
// also fires middleware.BudgetPace, once per window and unit, when at the
// pace of the window's elapsed part (a tenth of it passed at least) the
// spend would reach the limit before the window ends: the warning comes
// while there is time to act, with the time it runs out ([Remaining.Pace]).
//
// # Stores
//
// [MemoryStore] is the default. adapters/redis provides a shared store.
// When a shared store is unreachable, budget.store.on_unavailable decides:
// fail_closed (the default) refuses calls with ErrStoreUnavailable; local
// spends, in a local MemoryStore, budget.store.local_fraction (default 0.1)
// of each team limit per replica (of a shared run's limit, in the run's own
// ledger), with a warning and a middleware.StoreFailed event.
package budget
