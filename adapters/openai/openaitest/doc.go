// Package openaitest is the test floor's provider: a scripted
// OpenAI-compatible Chat Completions server for tests: real clients
// (go-openai, langchaingo, plain net/http) talk to it in the real wire
// format, JSON and server-sent events alike, and it answers what the test
// scripted, including the failures a provider produces.
//
// It depends on the standard library only.
//
// # Scripting
//
// A test registers rules; each answers the requests that match all of its
// [Matcher]s with a queue of [Reply] values:
//
//	srv := openaitest.NewServer(t) // 127.0.0.1 listener, closed by t.Cleanup
//	srv.On(openaitest.Model("gpt-4o-mini"), openaitest.LastRole("user")).
//		Reply(openaitest.ToolCalls(openaitest.Call("call_1", "check_disk", `{"path":"/"}`)))
//	srv.On(openaitest.LastRole("tool")).Reply(openaitest.Text("The disk is 42% full."))
//
//	cfg := openai.DefaultConfig("test-key")
//	cfg.BaseURL = srv.URL // http://127.0.0.1:<port>/v1
//
// Rules are tried in the order they were added; the first one that matches
// and has a reply left answers. A rule serves its replies in order and, once
// they are exhausted, repeats the last one forever, unless [Rule.Times]
// limits the number of requests it answers. A request no rule answers gets
// the [Server.Default] reply, or by default a 400 error whose message names
// the request, so that an incomplete script fails loudly.
//
// Every request is recorded ([Server.Requests]) with its headers, raw body
// and decoded [ChatRequest], for assertions.
//
// # Wire format
//
// The server answers POST requests to any path ending in
// "/chat/completions". A non-streaming request gets a "chat.completion"
// object; message.content is null when the reply only calls tools. A
// streaming request ("stream": true) gets "chat.completion.chunk" events,
// each flushed as "data: {json}\n\n":
//
//  1. delta.role "assistant";
//  2. reasoning_content deltas, then content deltas, of [Reply].ChunkSize
//     characters each;
//  3. per tool call, in index order: a delta with index, id, type and
//     function.name and empty arguments, then argument fragments carrying
//     only index and function.arguments;
//  4. an empty delta with finish_reason;
//  5. when stream_options.include_usage is true, a chunk with "choices": []
//     and usage (the other chunks then carry "usage": null; without
//     include_usage no chunk has a usage field);
//  6. "data: [DONE]".
//
// [Reply].Refusal is sent as message.refusal, or refusal deltas after the
// reasoning; [Reply].Alternatives are the choices of n > 1, streamed after
// the first choice's chunks.
//
// # Other servers' shapes
//
// OpenAI's order is one of many valid ones. With [Reply].Shape the stream
// arrives in a random valid shape, drawn from its Seed, as servers other
// than OpenAI's send them (fragments cut and interleaved at random, ids and
// names late or repeated, every call at index 0, filter-annotation chunks,
// logprobs, comments, CRLF, writes split at any byte; see [Shape]): every
// shape assembles, by the official SDKs' rules, to the answer served
// without streaming, which makes property tests of stream assembly easy.
// [Reply].Raw plays a body byte for byte, for the shapes no valid stream
// has (a line that is not JSON, a stream without "[DONE]").
//
// Errors use OpenAI's status codes and body,
// {"error":{"message","type","param","code"}}: see [RateLimited],
// [InsufficientQuota], [ServerError], [Unavailable], [ContextLengthExceeded],
// [InvalidAPIKey], [ContentFilterError] and [Error].
//
// # Faults and latency
//
// [Reply].Latency delays the first byte and [Reply].ChunkLatency every later
// SSE line. A [Fault] breaks the response itself: a stall before the first
// byte or mid-stream, a connection cut before "[DONE]", a clean end without
// "[DONE]", or malformed JSON. Every wait ends when the request's context
// does (the client disconnects or gives up), so no goroutine is left behind.
//
// # Usage counting
//
// Token counts follow a deterministic rule, so that tests can compute the
// expected values, with [PromptTokens], [CompletionTokens], [ReasoningTokens]
// and [UsageFor]. With ceil(n/4) written q(n) and byte lengths:
//
//	prompt_tokens     = 3
//	                  + Σ messages: 4 + q(content text + name + tool calls' names and arguments)
//	                                  + 1 per tool call + 85 per non-text content part
//	                  + Σ tools:    8 + q(name + description + compact JSON parameters)
//	reasoning_tokens  = q(reasoning)
//	completion_tokens = q(content) + reasoning_tokens
//	                  + Σ tool calls: 1 + q(name + arguments)
//	total_tokens      = prompt_tokens + completion_tokens
//	cached_tokens     = 0
//
// For example a request with one user message "Hello, world!" (13 bytes) has
// 3 + 4 + 4 = 11 prompt tokens, and the reply "Hi!" 1 completion token.
// A reply with a non-nil [Reply].Usage reports that usage instead, cached and
// reasoning tokens included.
//
// # In memory and deterministic time
//
// [Server.Transport] (or [NewTransport] for any handler) serves requests
// in-process through an [io.Pipe], without sockets, so a client using it can
// run inside a [testing/synctest] bubble where latencies and timeouts pass in
// fake time:
//
//	synctest.Test(t, func(t *testing.T) {
//		srv := openaitest.New()
//		srv.On().Reply(openaitest.Reply{Content: "late", Latency: 2 * time.Second})
//		cfg := openai.DefaultConfig("test-key")
//		cfg.BaseURL = srv.URL
//		cfg.HTTPClient = &http.Client{Transport: srv.Transport()}
//		// ... a call returns after exactly 2s of fake time
//	})
//
// # Concurrency
//
// A [Server] and its [Rule]s are safe for concurrent use; matchers run
// outside the server's lock and must be safe for concurrent use themselves.
package openaitest
