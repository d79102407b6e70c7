// Package compact is a layer of the chain that keeps every LLM request under
// an input token ceiling by compacting the old turns of the conversation,
// without breaking the tool-call protocol or the provider's prompt cache.
//
// Every tokenwise layer is built the same way: New(Config, ...Option)
// returns a *Compactor whose Middleware method gives the
// middleware.Middleware. Config is plain data whose zero fields are
// documented defaults or "off" (as gobreaker's Settings), so the layer is
// usable without a policy file; package llmwrap maps a policy's section to
// it. Options are functional options (as in connect-go and go-kit) for
// code-side dependencies (estimator, offloader, summariser, pricer, context
// windows) only, never policy data.
//
// The middleware estimates a request's input tokens before the call. When
// they exceed the ceiling (Config.MaxInputTokens, or Config.WindowFraction
// of the routed model's context window, the smaller wins), it sends a
// rewritten copy of the request instead (the caller's request and messages
// are never modified), made to fit by the strategies of the policy, in
// order:
//
//   - [Offload]: old tool results larger than OffloadOverBytes are replaced
//     by the excerpt an [Offloader] returns (an artifact id the agent reads
//     the whole result back with). Lossless.
//   - [Summarise]: old turns are replaced by a summary written by the
//     summary model. The summary call goes through the handler below the
//     middleware (budget, fallback, retry: it is billed like any call and
//     recorded in the run with stage [StageSummary]) and is cached by the
//     exact text it summarises, so the same turns are never summarised
//     twice, in any run.
//   - [Drop]: old turns are replaced by a one-line marker saying how many
//     turns and messages were dropped.
//
// When nothing makes the request fit, the call fails with a
// [*TooLargeError] naming the estimate and the ceiling; it matches
// [ErrTooLarge] and middleware.ErrContextWindow.
//
// # Protocol
//
// A conversation is split into its head (leading system messages, or
// developer messages, the system prompt of OpenAI's newer models, and the
// first user message), its turns and a protected tail. A turn is an
// assistant message together with all of its tool results, or any other
// single message, so a tool call is always kept or compacted with its
// results. The head, the last Config.KeepLastTurns turns and the latest
// user message are never touched; system and developer messages inside
// compacted turns are kept.
//
// # Prompt caches
//
// Providers cache prompt prefixes (OpenAI: 1,024 tokens and more), so a
// compaction that rewrites the first messages on every call would make
// every call a cache miss. This one compacts in blocks of BlockSize turns,
// oldest first, and freezes each block in the run ([middleware.RunValue]):
// later calls of the run send exactly the same compacted prefix, byte for
// byte, and only compact again (the next block, or a stronger strategy for
// the oldest weakest block) when the request no longer fits. Outside a run
// every call is compacted on its own. The run report shows the cached share
// of every call's input.
//
// # Savings
//
// Every compacted call records the tokens it removed, and the USD they
// represent at the model's input price (WithPricer), in the call's
// CallFacts (Saved, SavedPico, Notes), which the run totals and report
// sum, and emits middleware.ContextCompacted.
//
// # Cost
//
// Deciding that a request fits is one estimate (memoised per message by
// tokens.Estimator, shared with the other layers of the call). Compaction
// re-estimates a few candidate requests and, for the blocks it freezes,
// calls the offloader or the summariser outside its locks.
package compact
