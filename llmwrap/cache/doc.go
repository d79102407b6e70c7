// Package cache is a layer of the chain, tokenwise's response cache: an
// exact-match cache of LLM answers that never serves a wrong one.
//
// Every tokenwise layer is built the same way: New(Config, ...Option)
// returns a *Cache whose Middleware method gives the middleware.Middleware.
// Config is plain data whose zero fields are documented defaults or "off"
// (as gobreaker's Settings), so the layer is usable without a policy file;
// package llmwrap maps a policy's section to it. Options are functional
// options (as in connect-go and go-kit) for code-side dependencies (the
// store, a pricer) only, never policy data.
//
// # Key
//
// The key is built on a canonical, versioned encoding ([AppendCanonical],
// [KeyVersion]) of the request, by denial: everything
// is in it except the fields on one short list known not to change the
// answer, middleware.NeutralFields (metadata, prompt_cache_key,
// safety_identifier, service_tier, stream, stream_options, user; not
// store: the id of a hit for store: true must be of a kept completion,
// and with store: true not metadata either, which the provider keeps with
// the completion and the caller finds it by),
// the scope aside: the team (middleware.TeamFrom), or global. The core
// fields are encoded one by one (temperature omitted is the provider's
// default, not 0); what the core does not model is in the key through
// Request.Extra and, for a request that came through the OpenAI transport,
// the wire body itself (middleware.NativeKeyer): unknown and vendor
// fields (guided_choice, min_tokens, ...), every field of every message
// (function_call, refusal, audio, ...), tools of every type, tool_choice in
// every form, strings as sent (a lone surrogate is not U+FFFD). The
// langchaingo adapter puts every CallOptions field but the streaming funcs
// and trace Metadata in the core or Extra. The encoding is tagged and
// length-prefixed, so it is unambiguous.
//
// The key itself is a 64-bit xxHash: of the encoding ([Sum]) for a request
// the OpenAI transport decoded and no layer changed (hashed in place in
// the request body, not copied), and otherwise of the encoding with each
// message's encoding replaced by its own xxHash. An agent resends the same
// messages every turn, as the same Go strings (the OpenAI adapter gives a
// resent message the strings it decoded the first time; a Go caller keeps
// its values): with a [Memory] store the cache finds a message's encoding
// and hash by the identity of its strings (data pointers and lengths,
// compared in full; a message with binary parts, or of under 256 bytes,
// is always encoded, which costs about a lookup), so a miss costs the
// hash of the request's header, tools and settings and of its new and
// short messages only. The keys are the same in every process (a Redis
// store is shared).
//
// A key is only a hint: every entry keeps its request's encoding and a
// lookup is a hit only when it is equal: a hash collision costs a miss,
// never an answer to another request (or another team). In a [Memory]
// store an entry keeps that encoding without a copy of the request, and
// the entries of an agent's successive turns share what they resend, so
// that a miss keeps alive about what is new in its request rather than
// the whole conversation again: a request the OpenAI transport decoded as
// pieces that refer to the transport's own copies of the messages and
// tools it has seen (immutable, shared by every request that resends
// them) and a copy of the rest of its keyed members (or, when it resends
// nothing, by reference to its body); any other as its header, its tail
// (tools and settings, shared by the entries of requests with an equal
// tail) and its messages' encodings. The shared messages of an entry are
// a chain whose first nodes are those of the entries of earlier turns
// (same messages, same order): an entry adds a node or two for what is
// new, so the garbage collector, which scans every live entry at every
// cycle, finds a pointer or two per entry, not one per message of its
// conversation. A lookup compares it piece by piece (a message shared by
// the two requests at once) or in flat form ([Entry.Canonical] gives the
// bytes).
//
// # What is stored
//
// Only complete answers ([Complete]: finished by stop or tool calls): no
// errors, no truncated or filtered answers, no cut streams; and only the
// route's own answers: not one a fallback model gave after the routed
// model failed, nor one a budget downgraded (middleware.CallFacts
// OffRoute), which the next identical call would not get. An answer that
// names what the provider keeps for a while only (an audio answer's id,
// middleware.NativeExpirer) is kept no longer than that, whatever the TTL. By default
// identical requests share an answer whatever their temperature, as
// LiteLLM, Portkey and Helicone do; [Config].DeterministicOnly (policy
// deterministic_only: true) stores only deterministic requests
// ([Deterministic]: temperature 0 or a seed). Tool-call answers are cached:
// they are the agent's plan.
//
// # Hits
//
// A hit is a deep copy with FromCache set and zero Usage: a cached answer
// costs nothing, so no budget is charged and nothing looks like spend. What
// the hit saved (the original usage and its price: what the call it
// replaced cost, each provider call of a regenerated or cascaded answer at
// the model it was billed at, Entry.Bill) is recorded in the
// call's middleware.CallFacts (Saved, SavedPico, Cache = hit), hence in
// the run report, and in a middleware.CacheLookup event.
//
// Hits are lossless: when the adapter's Native is a
// middleware.NativeMarshaler (the OpenAI adapter's response body) the entry
// keeps it, and a hit through the OpenAI transport is the provider's body
// byte for byte: all n choices, logprobs, refusal, audio, annotations,
// system_fingerprint, service_tier and usage details (no field is fresh:
// id and created are those of the stored answer, and usage says what it
// cost when it was made), marked by the response header X-Tokenwise-Cache:
// hit. Through the langchaingo adapter a hit is the inner model's
// response, every candidate and GenerationInfo (Go types kept). A
// streaming caller gets the answer chunked as a provider streams it
// (reasoning, refusal and content in pieces of [Config].ReplayChunk bytes,
// tool calls by index with their arguments in pieces, the finish reason,
// then the usage chunk, which the transport sends only to callers who
// asked for it), each chunk's Native a middleware.CachedChunk. A caller
// that can render the stored native answer itself says so with
// middleware.CacheControl ReplayFormat; the cache then answers its
// streamed hit without streaming it. The OpenAI transport does: a streamed
// hit whose entry keeps the provider's body is streamed from that body,
// every choice interleaved by index (one choice a chunk), logprobs per
// chunk (one token a chunk when the tokens spell the text), refusal, tool
// calls, the stored id, created, model, service_tier and
// system_fingerprint, and the stored usage when the caller asked for it
// (stream_options.include_usage); what a stream cannot carry (annotations,
// audio) is left out. A streamed hit is marked X-Tokenwise-Cache: hit too.
// An answer the OpenAI provider streamed keeps its body too: its Native
// merges the stream's chunks into the body the provider would have sent
// unstreamed (every choice, logprobs, refusal, tool calls, id, model,
// system_fingerprint, usage), so its hits, streamed or not, are lossless
// as well.
//
// # Misses and bypasses
//
// Every miss and bypass has its reason in CallFacts.CacheReason (the run
// report shows "bypass: request not deterministic (deterministic_only)")
// and in the CacheLookup event: a plain miss has none; others are
// [ReasonCollision], [ReasonStoreFailed], [ReasonNotDeterministic],
// [ReasonStreamNotCacheable] (a streaming request under [Config].NoStreams,
// policy cache.streams: false), [ReasonUnstreamable] (a streaming request
// for legacy function calls or audio output, which a stream's core chunks
// do not carry), [ReasonLiveSearch] (a request with web_search_options,
// OpenRouter's web plugin or a web search tool, or
// to a model that searches on every call — OpenAI's search models,
// Perplexity's Sonar, OpenRouter's ":online" variants, Groq's Compound
// systems: the provider
// searches the web each time, and an answer kept would be stale), or the
// middleware.CacheControl Source of a request that asked for a bypass or a
// refresh ("cache.WithBypass", "cache.WithRefresh", "cache-control
// no-store" for an HTTP request through the OpenAI transport). An answer
// that is not stored says why ("answer not stored: finish_reason
// "length"").
//
// # Coalescing
//
// Identical concurrent misses make one provider call: the first caller
// leads, the others wait and are served its answer as hits, whole (through
// the OpenAI transport the provider's body), also when it is not kept (a
// choice cut by length, a fallback model's answer). When the leader
// fails for a reason of its own (its caller cancelled, its run's budget or
// deadline) the followers are not failed: one of them calls again. A
// provider's refusal of the request itself (a 4xx or 5xx answer) is shared.
//
// # Control and failures
//
// Per request, through the context: [WithBypass], [WithRefresh] (call and
// overwrite), [WithTTL]. A store error is reported as a
// middleware.StoreFailed event and is a miss, unless [Config].FailClosed,
// in which case the call fails with [ErrStore].
//
// # Stores
//
// [Memory] is an in-process LRU bounded by entries and bytes with a TTL per
// entry, sharded with a lock per shard when large (the byte bound stays the
// store's as a whole), keeping each answer packed (pointer-free);
// adapters/redis.CacheStore shares entries between replicas. Any [Store]
// will do. An entry given to a store other than a Memory carries when it
// was stored and the Config.TTL then ([Entry].Stored, [Entry].TTL, kept in
// its binary form): a cache whose TTL is shorter (a reload shortened it)
// does not serve an entry kept under a longer one once older than its own
// ([Entry.Outlived]); a Memory store kept across reloads is told the TTL
// in force instead ([Memory.HoldTo]).
//
// In the default onion (see package llmwrap) the cache sits outside the
// router and the budget: it keys on the model the caller asked for, and a
// hit spends no budget. Package llmwrap sets [Config].Variant to a digest of
// the policy's sections below it (models, routing, context, fallback), so
// that a chain that routes otherwise never shares its answers.
package cache
