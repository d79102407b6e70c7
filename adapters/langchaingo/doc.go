// Package langchaingo is the langchaingo adapter: it connects langchaingo
// (github.com/tmc/langchaingo) to the tokenwise core: a [Model] is an
// llms.Model that runs every call through a [middleware.Middleware] chain,
// and whose innermost handler calls the langchaingo model the (possibly
// rerouted) request names.
//
// Users import it under an alias, since its name is langchaingo's:
//
//	import twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
//
//	strong, err1 := openai.New(openai.WithModel("gpt-4o"))
//	cheap, err2 := openai.New(openai.WithModel("gpt-4o-mini"))
//	if err := errors.Join(err1, err2); err != nil {
//		return err // a nil model would fail every call (ErrNilModel)
//	}
//	llm := twlc.New(twlc.Models{"gpt-4o": strong, "gpt-4o-mini": cheap}, chain,
//		twlc.WithDefaultModel("gpt-4o"))
//	// llm is an llms.Model: hand it to agents.NewOpenAIFunctionsAgent,
//	// agents.NewOneShotAgent, chains, ... as before.
//
// # Requests
//
// GenerateContent converts the messages (text, image URL and binary parts,
// tool calls, tool call responses) and options (model, temperature, top_p,
// seed, n, max tokens, stop words, tools and functions, tool choice, JSON
// mode) to a [middleware.Request]. Options langchaingo cannot report as
// "not set" (a zero temperature looks like no temperature) are detected by
// applying them to sentinel values, so an omitted temperature stays nil in
// the core request, as a cache key needs. For a model served by the openai
// backend, what it does not send is left out too: top_p, a seed of 0, and
// the temperature of the models it takes for reasoning models (o1-*, o3,
// o3-*, gpt-5*). A message carrying several tool call responses is one
// core tool message per response, and Request.Extra says which messages
// were so split ("grouped_tool_results"): the backend is given the message
// as it is, which it sends otherwise than separate ones (the openai
// backend refuses it), so a cache key must tell them apart; so does it
// name the generic messages ("generic_messages"), which the core takes for
// the user's as human ones, and the backends do not, and the messages of
// another role than tool or function that carry a tool call response
// ("tool_results_in"), which the core takes for tool messages. The call's own messages and
// options travel in Request.Native, with (for a response cache to key on)
// what the Models' langchaingo openai clients add to every request on
// their own: their endpoint, organization, response format
// (openai.WithResponseFormat) and a hash of their token.
//
// The innermost handler ([Provider]) calls Models[req.Model] with the
// caller's original messages and options plus overrides for what the chain
// changed: llms.WithModel(req.Model) always, and max tokens, sampling
// parameters, stop words, tools, tool choice, JSON mode and messages when a
// middleware changed them. Messages and tools the chain left alone are
// passed as the caller wrote them, parts the core does not model included.
// Options the core does not model (top-k, penalties, metadata, thinking
// mode) pass through untouched. The adapter never adds Metadata (the
// openai backend sends it to the API); hints travel in the context.
//
// # Responses and usage
//
// The core response is the first choice's message; usage comes from the
// first choice's GenerationInfo, normalised by [UsageFromGenerationInfo]
// across the backends' keys and number types (the openai backend's audio
// tokens included, billed at the audio rates). langchaingo's openai
// backend (v0.1.14) neither sends a request's service_tier nor decodes the
// answer's; a provider may still process the call at another tier than
// the standard one (a project whose default is priority processing). With
// [NewTransport] installed, the tier the answer names (a stream's chunks
// name it too) is read from the wire and the call billed at it; without
// it, at the model's standard rates. Nor does the backend return the model
// the answer names: with [NewTransport] installed it is read from the wire
// too, and the call billed as that model (a dated snapshot may have its
// own price, middleware.BilledModel); without it, as the model requested.
// When the answer reaches the
// caller unchanged, the caller gets a copy of the inner model's response
// (every choice, every GenerationInfo key, the backend's own number types);
// when a middleware answered (a cache hit carries the original) or rewrote
// it, a single choice is built from the core response. Either way the
// response is the caller's own: mutating it never affects a later call.
//
// # Streaming
//
// A call with StreamingFunc and/or StreamingReasoningFunc becomes a
// streaming core request. The provider installs its own funcs of the same
// kinds on the inner call and turns what they receive into
// [middleware.Chunk]s (content, reasoning, and the openai backend's JSON
// tool call deltas as ToolCallDelta); the outermost side hands the chunks
// that come out of the chain to the caller's funcs. A chunk the chain did
// not touch reaches the caller exactly as the inner model produced it; a
// chunk a middleware synthesised (a cache replay, a router that hid a
// draft and streams the final answer) is delivered as its text, and tool
// calls in the openai backend's JSON form. A cache hit therefore streams
// the same text as the call that filled the cache, not the same chunks: a
// stored answer keeps no chunk boundaries, so the hit comes in the cache's
// own pieces (at most cache.Config.ReplayChunk bytes each, none empty),
// without the backend's empty role and finish chunks.
//
// A stream cut before its usage is billed an estimate: its input and the
// output it streamed. The openai backend streams one choice only: of a
// request with n > 1, it appends what the other choices stream to the
// first; with [NewTransport] installed, the first choice is the first
// candidate alone, and what the other choices streamed is kept and
// counted too (middleware.Response.OtherChoices), as the OpenAI adapter
// counts it. Either way a streamed answer of n > 1 is not the whole
// answer, and a response cache does not keep it.
//
// # Errors
//
// Errors of the inner model become core errors in one place: a cancelled
// or expired context stays context.Canceled / context.DeadlineExceeded
// (with its cause); HTTP failures become a [*middleware.ProviderError]. For
// the openai and anthropic backends, which return errors as text, install
// [NewTransport] in the inner model's HTTP client to classify from the
// status, error code and Retry-After headers instead of the text; it also
// turns an error object sent with status 200 (in an event stream or a
// plain answer's body), which the openai backend ignores or reports as an
// empty response, into the provider's error. Without it, the openai
// backend's "empty response" (a 200 answer without choices) is a
// [middleware.ErrMalformed] error whose attempt is billed, as with it
// (with it, one that counts a usage is billed that usage, as the provider
// bills it; without it, its estimated input).
//
// An inner model that ignores its context (a model in process, a client
// without deadlines) is given up on when the context ends (the caller's,
// timeouts.call, timeouts.total, the run's deadline): the call returns
// that context's error at once, as for a model that honours it, and is
// billed as a cancelled or timed-out call is (its input estimated, plus
// what it streamed). Nothing the model streams after that reaches the
// caller's funcs, and its late answer is dropped. The inner call keeps
// running on a goroutine of its own, which ends when the model returns.
//
// Embeddings ([Model.CreateEmbedding]) and [Model.SupportsReasoning] are
// forwarded to the default model; embedding calls do not go through the
// chain.
package langchaingo
