// Package otel is the OpenTelemetry observer adapter: it reports tokenwise's
// core events to OpenTelemetry: a span per LLM call with a child span per
// attempt, and metrics following the OpenTelemetry GenAI semantic
// conventions.
//
//	obs, err := otel.New(otel.WithTracerProvider(tp), otel.WithMeterProvider(mp))
//	chain, err := llmwrap.Build(pol, llmwrap.WithObserver(obs))
//
// # Spans
//
// "chat {model}" (kind client) from call start to call end, a child of the
// span in the caller's context (a layer's own call, such as a context
// compaction's summary, is a child of the call it serves), with gen_ai.operation.name, gen_ai.system,
// gen_ai.request.model, gen_ai.response.model, gen_ai.usage.input_tokens,
// gen_ai.usage.output_tokens and tokenwise.* attributes (team, run, stage,
// routing rule, cache status, cost). When a call made more than one
// attempt (one try against one model: retries, fallbacks, hedges,
// cascades), each is a child span "attempt {model}" from when it was sent
// (a call of one attempt has none: its span says it all). A call or
// attempt whose usage
// is an estimate (the provider reported none: middleware.Attempt.Estimated)
// has tokenwise.usage.estimated true. Retries, fallbacks, budget
// warnings and refusals, cache lookups and breaker changes during the call
// are span events. A failed call has status Error and error.type.
//
// # Metrics
//
//   - gen_ai.client.token.usage (histogram, {token}) with gen_ai.token.type
//     input|output, by gen_ai.operation.name (chat; embeddings for the
//     gateway's embeddings calls) and requested and response model (the
//     tokens of a call's attempts under the models that used them, one
//     record per model)
//   - gen_ai.client.operation.duration (histogram, s), with error.type on
//     failures
//   - tokenwise.cost (counter, pico-USD: {usd_pico}, exact) by model and
//     team: each provider attempt under the model that billed it (a
//     fallback's billed failure under its own model), as the run's totals
//     per model
//   - tokenwise.cache.lookups (counter) by tokenwise.cache.status
//   - tokenwise.cache.saved (counter, {usd_pico}) saved by cache hits
//   - tokenwise.route.decisions (counter) by tokenwise.from, tokenwise.to
//     and tokenwise.stage: the models routers picked
//   - tokenwise.route.saved (up-down counter, {usd_pico}) by requested
//     model and team: what routing saved against the models asked for
//     (CallFacts.RoutingSavedPico; negative when it chose dearer ones)
//   - tokenwise.fallbacks, tokenwise.retries, tokenwise.budget.warnings,
//     tokenwise.breaker.changes, tokenwise.ratelimit.decisions (counters)
//
// An Observer is safe for concurrent use.
package otel
