// Package route is a layer of the chain that picks the model of each LLM
// call: by ordered rules of the policy (stage of the agent loop, whole-word
// keywords, regular expressions, estimated input tokens, tools present,
// team, remaining budget), by a [Router] of your own, by cascade (cheap
// first, escalate when a check fails), by regeneration of a cheap model's
// final answer with the strong model, and by escalation to a model with a
// larger context window.
//
// Every tokenwise layer is built the same way: New(Config, ...Option)
// returns a *Routing whose Middleware method gives the
// middleware.Middleware. Config is plain data whose zero fields are
// documented defaults or "off" (as gobreaker's Settings), so the layer is
// usable without a policy file; package llmwrap maps a policy's section to
// it. Options are functional options (as in connect-go and go-kit) for
// code-side dependencies (a Router, an estimator, a budget reader, cascade
// checks, context windows) only, never policy data.
//
// # Rules
//
// [NewRules] compiles a policy's routing section into a [Router]. Rules
// are tried in order; the first whose every set condition holds picks the
// model; when none matches, routing.default does (or, without a default,
// the model the caller asked for). Every decision is explained in the
// call's [middleware.CallFacts].Rule, in the run report and in a
// [middleware.RouteDecided] event, e.g.
//
//	rule 1 "cheap-tool-selection": stage=tool_selection
//	rule 3 "short-status": keyword "status", tokens 812 <= 2000
//	default "gpt-4o": no rule matched
//
// Keywords match whole words, case-insensitively: the keyword "check"
// matches "Check the disk" and "check-up", not "checkout the repo".
//
// # Learned routing
//
// With routing.learned set, a call no rule matched is scored by a learned
// model (package learn: hashed word uni- and bigrams, logistic regression,
// int8 weights trained by `tokenwise route train`): the last user message
// (its first 4 KB) scoring at or above the threshold goes to the strong
// model, below it to the weak one, e.g.
//
//	learned "router.bin": score >= 0.3017 → gpt-4o
//
// The weights file is read when the router is built (a missing or corrupt
// file is an error then, not on the first call); scoring allocates
// nothing. Package routeeval measures a policy's routing, a learned
// scorer or a baseline on labelled data before you trust it.
//
// # Stages
//
// [instrument.DetectStage], the one stage detector of tokenwise, infers the
// stage without help from the caller (the instrument layer runs it once per
// call and the router reads the result): a conversation ending with the
// user while tools are offered is tool selection; a conversation ending
// with a tool result is result analysis; so is a one-shot (ReAct) agent's
// prompt whose scratchpad holds an Observation after the question. A
// request that offers no tool is never tool selection: plain chat is a
// final answer. A stage set with [middleware.WithStage] wins. The report
// shows the stage each call was routed as, and marks answers without tool
// calls as final.
//
// # Regeneration, cascade, larger windows
//
// With routing.regenerate_final enabled, a final answer written by another
// model than the strong one is written again by the strong model, without
// tools. A streaming caller receives exactly one answer: the cheap model's
// chunks are held back, and either replayed (when its answer was a tool
// call, which is kept) or dropped (when the strong model regenerates). A
// regeneration that fails before any of its answer reached the caller
// (the strong model down) leaves the call the cheap model's final answer,
// replayed to a streaming caller, noted in the call's facts and not kept
// by a response cache (CallFacts.OffRoute).
//
// With routing.cascade set, a call routed to one of the cascade's models
// (or, when no rule matched and there is no default, any call) is tried
// on that model first and escalated to the next one when its answer fails
// a check: tool-call arguments that are not valid JSON or do not match the
// tool's schema, an empty answer, a finish reason other than stop or
// tool_calls, or a custom [Check] registered with [WithCheck]; or when the
// model fails: the provider's error, the step's own timeout (timeouts.call),
// its open circuit breaker ([Escalates]). Every call is billed and its usage
// counted in the call's record.
//
// With routing.larger_window set, a call whose estimated input does not
// fit the routed model's context window goes to the first listed model
// whose window fits it. (A call that fails with
// [middleware.ErrContextWindow] anyway is escalated by the fallback layer,
// which reads the same list.)
//
// # Order
//
// The router sits under the cache and above the budget (see package
// llmwrap): the budget reserves at the price of the model routed to, and
// re-checks each escalation and regeneration.
package route
