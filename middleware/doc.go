// Package middleware is the contract every layer and adapter of tokenwise
// shares: the types of a call, [Handler], [Middleware] and [Chain], the run
// scope, the events and the error taxonomy. It holds no policy, no report
// rendering and no wire format.
//
// It defines the vocabulary every other tokenwise package speaks: a chat
// [Request] and its [Response], [Message]s, [ToolCall]s, [Usage], streamed
// [Chunk]s, the [Handler] that serves a request, the [Middleware] that
// decorates a handler, and [Chain], which composes middlewares so that the
// first one is the outermost.
//
// Adapters translate a framework's native calls (a langchaingo llms.Model,
// the OpenAI wire JSON a go-openai client sends) into a Request, run it
// through a chain and translate the Response back. Middlewares never see a
// framework type.
//
// # Streaming
//
// A request with a non-nil [Request.Stream] is a streaming request: the
// innermost handler calls Stream once per chunk, in order, before it returns
// the assembled Response. A middleware that wants to see chunks (a time to
// first token timeout, a cache that records a stream, a router that hides a
// cheap model's draft) copies the request and replaces Stream with its own
// function that forwards to the original. Because Handle returns only when
// the stream has ended, a budget reserves before and settles after, and a
// circuit breaker judges the stream when it ends.
//
// # Runs
//
// [StartRun] opens a run scope (one agent task): every call made with the
// returned context is recorded in the [Run] (model, stage, tokens, USD,
// latency, cache status); package observe renders the report.
// [OpenSharedRun] opens a run shared by several processes through a
// [RunStore] (gateway replicas serving one run's requests): its calls are
// numbered by the store and it starts once, so that run limits hold across
// the processes; a store that also sums runs ([RunSums]) receives each
// finished call's figures, and [Run.SharedState] reports the calls of
// every process.
//
// # Errors
//
// Provider failures are classified once, at the adapter edge, into a
// [*ProviderError] whose Is method matches exactly one sentinel of the
// taxonomy ([ErrRateLimited], [ErrUnavailable], [ErrContextWindow], ...).
// Callers use errors.Is and errors.As; no code compares error strings.
//
// # What lives elsewhere
//
// The instrument layer that opens every call and detects its stage is
// package llmwrap/instrument; the run report's rendering (text and JSON) is
// package observe; reading a provider's HTTP answer (status codes, error
// codes, rate-limit headers) is internal/httperr, shared by the adapters.
// The core keeps the facts they work on: [CallFacts], [Run], [Totals] and
// [ProviderError].
//
// The package imports nothing outside the standard library, and no
// net/http.
package middleware
