// Package llmwrap is the wiring of tokenwise: it turns a policy into a
// middleware chain of the layers (llmwrap/*) around LLM calls.
//
// It is the one place that reads a policy for the layers: config.go maps
// each policy section to the plain Config of its layer package, and every
// layer is built the same way, New(Config, ...Option) returning a value
// whose Middleware method gives the middleware.Middleware (nil when the
// Config turns the layer off). Configs are plain data with documented zero
// values, as gobreaker's Settings, so a layer is usable on its own without
// a policy file; functional options, as in connect-go and go-kit, carry
// only code-side dependencies (stores, clocks, loggers, estimators). The
// same split holds here: a policy is data, Options (WithCacheStore,
// WithLogger, ...) are code. NewExecutor does the same for the tool
// executor (package toolwrap).
//
// Each concern lives in its own package (guard, timeout, budget, cache,
// route, fallback, ...); [Build] composes the ones a policy turns on, in
// the documented order (outermost first):
//
//	instrument → run guard → total timeout → cache → router → context compaction →
//	fallback → budget → rate limit → circuit breaker → retry → call timeout → meter → provider
//
// Why this order: a cache hit spends no budget and makes no provider call;
// the router picks the model before anything is priced; the budget sits
// under the fallback so that every target model is reserved at its own
// price (a fallback to another model re-checks the budget); the rate limit
// admits each target model against its own limits and its refusals are no
// breaker failures; a breaker and a retry act per model; the call timeout
// bounds each attempt, the total timeout (timeouts.total) the call with all
// its attempts (the total of the model asked for, extended by an attempt
// of a model timeouts.models allows a longer one: a gpt-4o call routed
// or fallen back to o3 gets o3's), and the run guard's deadline every call
// of the run. The
// meter (middleware.Meter), innermost, records and prices each provider
// attempt once; the instrument layer sums the attempts into the call's cost.
package llmwrap
