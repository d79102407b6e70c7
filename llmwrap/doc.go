// Package llmwrap is the wiring of tokenwise: it turns a policy into a
// middleware chain of the layers (llmwrap/*) around LLM calls.
//
// Each concern lives in its own package (guard, timeout, budget, cache,
// route, fallback, ...); [Build] composes the ones a policy turns on, in
// the documented order (outermost first):
//
//	instrument → run guard → cache → router → context compaction →
//	fallback → budget → rate limit → circuit breaker → retry → call timeout → provider
//
// Why this order: a cache hit spends no budget and makes no provider call;
// the router picks the model before anything is priced; the budget sits
// under the fallback so that every target model is reserved at its own
// price (a fallback to another model re-checks the budget); the rate limit
// admits each target model against its own limits and its refusals are no
// breaker failures; a breaker and a retry act per model; the call timeout
// bounds each attempt, and the run guard's deadline bounds all of them.
package llmwrap
