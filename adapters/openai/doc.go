// Package openai is the OpenAI wire adapter: it connects go-openai
// (github.com/sashabaranov/go-openai), and any other client of the OpenAI
// Chat Completions wire format, to the tokenwise core: an
// [http.RoundTripper] that runs chat completions through a
// [middleware.Middleware] chain, and a [Provider] that serves core requests
// with an OpenAI-compatible endpoint.
//
// The package name clashes with go-openai's; import it under an alias:
//
//	import twopenai "github.com/tokenwise/tokenwise/adapters/openai"
//
// # Adoption
//
// A go-openai user keeps *openai.Client and every call site; only the
// config changes:
//
//	cfg := openai.DefaultConfig(key)
//	cfg.HTTPClient = twopenai.NewHTTPClient(chain)
//	client := openai.NewClientWithConfig(cfg)
//
// langchaingo's openai backend takes the same client:
// openai.New(openai.WithHTTPClient(twopenai.NewHTTPClient(chain))).
//
// # Data flow
//
// [Transport.RoundTrip] decodes a POST to ".../chat/completions" into a
// [middleware.Request] (model, messages with multi-part content, names,
// tool calls and tool call ids, function tools, tool_choice, temperature,
// top_p, seed, stop, max_tokens or max_completion_tokens, response_format,
// n and stream) and runs it through the chain. The chain's innermost
// handler is a [Provider] that sends the request to the original URL with
// the original headers (Authorization included) through the base transport.
// A call the chain moved to another model on an Azure OpenAI URL, which
// names the deployment that serves it (".../openai/deployments/gpt-4o/..."),
// goes to that model's deployment, named as the caller's is (as its model,
// or as go-openai's DefaultAzureConfig names it); the call of a
// deployment named otherwise is marked middleware.WithFixedModel, so that
// no layer moves it to another model.
// Other requests go to the base transport untouched.
//
// The translation is lossless for what the core does not model. Each
// decoded value's Native is a [*Wire] holding the wire JSON:
//   - a request the chain did not change is sent as the caller's bytes; a
//     changed one is patched: only the changed top-level members are
//     re-encoded, every other member (unknown ones included, e.g.
//     "metadata", "user", "logprobs") keeps its bytes and order, and in a
//     changed message list each message equal to an original one keeps its
//     bytes. Removing every tool also removes tool_choice and
//     parallel_tool_calls, which OpenAI refuses without tools.
//   - a response the chain did not change reaches the caller as the
//     provider's bytes; a changed or synthesised one (a cache hit, a
//     regenerated answer) is encoded as a chat.completion object.
//   - streamed chunks likewise: the provider's event bytes pass through,
//     chunks a middleware produced or changed are encoded as
//     chat.completion.chunk objects, then "data: [DONE]".
//
// Limits: only function tools are modelled; when a middleware changes the
// tool list, tools of other types are not sent. A content part of a type
// the core does not model is carried as a [middleware.Part] with MIMEType
// [PartMIMEType] and its wire JSON in Data. A message re-encoded because it
// changed loses fields the core does not model and its reasoning_content.
// A tool_choice object other than {"type":"function",...} decodes as "".
// When a middleware sets MaxTokens on a request that had no limit it is sent
// as max_completion_tokens (see [WithLegacyMaxTokens]); an endpoint that
// refuses that member as unknown (Azure OpenAI's "Unrecognized request
// argument supplied", before its newer api-versions) gets the call again
// with max_tokens, and its later calls at once.
//
// # Streams and usage
//
// The provider always asks the upstream for usage on streams
// (stream_options.include_usage), so that budgets can settle on real
// numbers. A caller that did not ask for it does not see the usage-only
// chunk, nor a "usage" field in the other chunks.
//
// RoundTrip runs a streaming chain as a coroutine the caller drives
// (iter.Pull): RoundTrip runs it until its first chunk is ready and
// returns the response (200, text/event-stream); each read of the body
// resumes it for the next chunk, whose events the read takes without a
// copy or a goroutine wake-up in between. When the provider has the next
// event already read from the network (a burst of chunks), a chunk's
// events wait for the next chunk's and one read takes them together (at
// most 4 KiB); a chunk whose successor has not arrived goes to the caller
// at once. The chain never runs ahead of the caller beyond such a burst;
// the timeout layer's idle clock stops while the caller holds a chunk, as
// while any stream function runs.
//
// Most chunks of an answer are the same bytes around a different content
// string; the provider decodes such a chunk from the previous one's
// decoding (the bytes around the string compared, the string's body
// checked for quotes, backslashes and control characters), which yields
// exactly what decoding it whole would. Closing the body early cancels
// the chain's context and returns once the chain has returned. If the
// chain fails after the first chunk, the body read fails with the chain's
// error, never with io.EOF: go-openai's Recv returns that error, so a cut
// stream is never taken for a complete one. As with any HTTP response, a
// caller must read the body to its end or close it (go-openai's
// stream.Close does): a body left open holds the chain — its goroutine,
// its budget reservation (extended in Redis while it is held), its
// rate-limit slot — until the request's context or the call's deadline
// (timeouts.call, timeouts.total, the run's) ends, which stops it; with
// none of them, until it is closed.
//
// The provider reads SSE line by line, each "data:" line being one event,
// as OpenAI sends them and as go-openai reads them: a data line indented
// by white space is one too, a byte order mark before the first line is
// not part of it, and a stream labelled application/json is read as one
// when its body begins as an event stream does. Strings that are not
// UTF-8 read as encoding/json reads them (U+FFFD for each invalid byte),
// each chunk on its own. A streamed answer's
// Native merges its chunks into the body the upstream would have sent
// unstreamed (every choice, logprobs, refusal, tool calls, id, model,
// usage), which is what a response cache keeps of it. The chunks are kept
// for that only when the call's context asks for it
// (middleware.WithKeepNative, which the cache sets on a streamed miss it
// will store); otherwise a streamed answer's Native is nil. Events go to
// the caller through a buffer: the chain does not wait for each chunk to
// be read (up to 32 KB unread), and a read takes every event written
// since the previous one.
//
// A cache hit (package llmwrap/cache) whose entry keeps an OpenAI body is
// the stored body byte for byte when not streamed; streamed, the transport
// renders it from that body (middleware.CacheControl ReplayFormat): every
// choice interleaved by index, logprobs per chunk, the stored id, created,
// model and system_fingerprint, usage when the caller asked. Either way the
// response carries the header X-Tokenwise-Cache: hit ([CacheHeader]).
//
// # Errors
//
// The Provider returns [*middleware.ProviderError]s: a non-2xx answer is
// classified with internal/httperr.Classify from the status and the OpenAI
// error body (Message, Type, Code; Gemini's OpenAI-compatible endpoint
// wraps its error object in an array, [{"error":{...}}], read as the
// object, and given to the Transport's client as the object, which
// go-openai decodes into an *openai.APIError), with RetryAfter from the
// response headers and Err an [*HTTPError] holding the response; a network failure
// is [middleware.ErrNetwork]; a body that is not a valid answer (malformed
// JSON, no choices, a bad stream chunk) is [middleware.ErrMalformed], and
// so is a stream whose chunks carry nothing (events of no choices, empty
// deltas: no content, tool call, finish reason or usage) before its
// "data: [DONE]"; a stream that ends before "data: [DONE]" is
// [middleware.ErrStreamCut]. An
// error object inside a 200 body or a stream is classified by its type,
// and a choice that finishes with finish_reason "error" (OpenRouter's
// failure of the provider behind it, with or without an error object) is
// the provider's error, never a finished answer. A
// failure caused by the caller's context returns the context's error
// (matching context.Canceled or context.DeadlineExceeded, and its cause).
//
// Once a stream has delivered chunks, every failure (a cut, a malformed
// chunk, an error event, a cancellation, an error returned by
// Request.Stream) is returned together with the partial [middleware.Response]
// assembled so far, so that a budget can bill what was already produced.
//
// The Transport gives a provider error that carries an HTTP status back to
// the caller as that HTTP response (status, Retry-After, the original error
// body), so that go-openai returns its usual *openai.APIError; when the
// chain sent the call more than once (a retry, a fallback, a hedge), or
// the provider's quota is spent (a 429 insufficient_quota, which no retry
// passes), it says x-should-retry: false, so that openai-go, which retries
// such answers on its own, does not multiply the policy's attempts. Every other
// error (tokenwise's own: a budget, a run guard, a timeout, a cut stream, a
// network failure) is returned by RoundTrip; http.Client wraps it in a
// *url.Error and go-openai returns that as is, so errors.Is and errors.As
// match tokenwise's sentinels through the go-openai call. langchaingo's
// openai backend replaces every *url.Error (a net.Error) by a fixed
// message; give it the [*Transport] itself, whose [Transport.Do] returns
// errors unwrapped, to keep them matchable there too.
//
// # Performance
//
// The hot paths (a request body, each streamed chunk) are decoded by a
// small validating scanner that reads only the fields the core models and
// copies no string without escapes; an unchanged request or response is
// not re-encoded at all, and a changed one (a router's model, a budget's
// max_tokens) is sent as the original body with the changed members
// spliced in. A Transport remembers the messages and tools it decoded,
// keyed by their wire bytes (compared in full): a message an agent resends
// is not decoded again, and comes back as the very same strings, on which
// the token estimator and the router's keyword matching keep per-message
// results (memo.go; at most 32 MiB of messages per Transport, none over
// 2 MiB); a resent request's messages and tools are predicted from the
// previous request's (one comparison each, no scan), and a new one is
// decoded once. The upstream request shares the caller's URL and, when
// they need no change (go-openai's do not), its headers; a body a layer
// patched is joined when under 3 KiB, so that net/http writes it with its
// headers at once, as it does the caller's. The package's benchmarks
// measure the request path, the decoding of a resent conversation, a
// whole RoundTrip (BenchmarkRoundTripTurns: an agent's turns, no layers,
// no network) and the per-chunk cost of a stream.
package openai
