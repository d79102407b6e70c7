// Package cache is tokenwise's response cache: an exact-match cache of LLM
// answers that never serves a wrong one.
//
// # Key
//
// The key is the 64-bit xxHash ([Sum]) of a canonical, versioned encoding
// ([AppendCanonical], [KeyVersion]) of everything that changes the answer:
// model, every message part, tools and tool_choice, temperature (omitted is
// the provider's default, not 0), top_p, seed, stop, max tokens, response
// format, n, the adapters' Request.Extra (penalties, top_k,
// reasoning_effort, ...) and the scope: the team (middleware.TeamFrom), or
// global. Never trace ids, metadata, callbacks or the stream flag. The
// encoding is tagged and length-prefixed, so it is unambiguous, and holds
// no Go map. Every entry keeps its request's encoding and a lookup is a hit
// only when it is equal: a hash collision costs a miss, never an answer to
// another request (or another team).
//
// # What is stored
//
// Only complete answers ([Complete]: finished by stop or tool calls): no
// errors, no truncated or filtered answers, no cut streams. By default only
// deterministic requests ([Deterministic]: temperature 0 or a seed);
// [Config].AnyRequest widens it. Tool-call answers are cached: they are the
// agent's plan.
//
// # Hits
//
// A hit is a deep copy with FromCache set and zero Usage: a cached answer
// costs nothing, so no budget is charged and nothing looks like spend. What
// the hit saved (the original usage and its price) is recorded in the
// call's middleware.CallFacts (Saved, SavedPico, Cache = hit), hence in
// the run report, and in a middleware.CacheLookup event. A streaming
// caller gets the answer replayed chunk by chunk (reasoning, content,
// tool-call deltas, finish reason) by middleware.Replay, so adapters render
// it as a normal stream.
//
// # Coalescing
//
// Identical concurrent misses make one provider call: the first caller
// leads, the others wait and are served its answer as hits. When the leader
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
// entry; adapters/redis.CacheStore shares entries between replicas. Any
// [Store] will do.
//
// In the default onion (see package llmwrap) the cache sits outside the
// router and the budget: it keys on the model the caller asked for, and a
// hit spends no budget.
package cache
