// Package policies is the configuration of tokenwise, its policy schema as
// plain data: the structs a team's policy file decodes into, strict loading
// from YAML or JSON, validation that reports every problem with its field
// path and file:line:col, money as exact micro-dollars, and the embedded
// price catalog.
//
// It imports no provider SDK and nothing else of tokenwise; the middlewares
// read a *Policy, the policy never calls them.
//
// # Loading
//
//	pol, err := policies.LoadFile("policies/devops.yaml")
//
// Load, LoadFile and LoadBytes read YAML or JSON (JSON is read as YAML, so
// JSON errors carry lines too). Decoding is strict: an unknown key, a key
// written twice in one mapping or a value of the wrong type is an error.
// Every problem of a file is collected — unknown and duplicate keys, type
// errors, then the semantic checks of Policy.Validate —
// and returned at once in a *ValidationError, one problem per line, sorted
// by position:
//
//	devops.yaml:5:3: routing.rulez: unknown field "rulez" (did you mean "rules"?)
//	devops.yaml:9:9: routing.rules[0].when.regex: invalid regex: missing closing ]: `[sz`
//	devops.yaml:13:7: routing.rules[1].model: unknown model "my-llama": not in the price catalog nor in models
//
// Only a YAML syntax error (or a file that is not a policy, see Hostile
// files) stops the parse; it is reported alone. Through extends, the decode
// problems of every file of the chain and the validation of the merged
// policy are reported together. A Policy
// built in code is checked with Validate; its problems read "path: message".
// errors.Is(err, ErrInvalid) matches every validation error. Default returns
// the embedded default policy (default.yaml).
//
// YAML anchors, aliases and merge keys (<<) are honoured. A UTF-8 byte
// order mark at the start of a file is ignored; a byte that is not UTF-8 is
// an error at its line and column, never read as U+FFFD. Extends is kept
// as data; resolving it belongs to the loader of a policy directory.
//
// # Hostile files
//
// Only regular files are read: a FIFO, a device, a socket or a directory
// named as a policy file or an extends target is an error matching
// ErrNotRegularFile, found by a stat before the open (and checked again on
// the descriptor, opened without blocking), never a hang. A file larger
// than MaxFileSize (1 MiB) is refused before it is read (ErrTooLarge).
// Before the YAML parser sees a document, its shape is checked on the
// bytes: at most 64 levels of nesting, 1,000 flow collections ([ and {),
// 10,000 entries and 1,000 entries under one parent (ErrTooDeep,
// ErrTooLarge, with the line); aliases and merge keys expand to at most
// 40,000 values, and a mapping merged from many places is expanded once
// (ErrTooLarge, with the line, past that). So any input loads or fails in
// milliseconds. An extends target that is not
// a .yaml, .yml or .json file, a document whose top level is not a
// mapping, and a mapping none of whose keys is a field (or a typo of one)
// are ErrNotPolicy and never quoted: it may be a .env file.
// Messages quote at most 40 bytes of a value. errors.Is sees every
// sentinel through a *ValidationError (Problem.Err).
//
// # Values
//
// Money is USD, an int64 of micro-dollars, read from the decimal text of a
// number or string (1.00, "0.15", "$2.50") and never through float64.
// Durations are Duration: "1.5s", "30s", "5m", "1h30m", "7d"; a bare 0 is
// allowed. Sizes are ByteSize: 8192, "64MiB", "2MB". Enumerations are string
// types with constants (OnExceedReject, StageToolSelection, ...).
//
// # Zero values
//
// Every zero value is meaningful and documented on its field. A zero
// section is off or pass-through: no budget, no cache, no routing, no
// fallback. A zero limit is "no limit". Where a zero value stands for a
// default (cache.max_entries: 10000, retry.base_delay: 200ms, ...) the field
// says so, and the package implementing the feature applies it.
//
// # Prices
//
// The embedded catalog (catalog.yaml; DefaultCatalog) holds list prices as
// of CatalogDate for OpenAI, Anthropic and Google models, in USD per one
// million tokens: input, output, cached input and cache write, with context
// window, maximum output and tiktoken encoding. A policy's models section
// adds models and overrides catalog fields. Policy.Model resolves a name
// exactly or as a dated snapshot of a known model ("gpt-4o-2024-08-06" →
// gpt-4o; the longest match wins, so "gpt-4o-mini-2024-07-18" →
// gpt-4o-mini). ModelSpec.Cost prices TokenCounts exactly, as a PicoUSD
// (an int64 of 10^-12 dollars): a rate in micro-dollars per million tokens
// is pico-dollars per token, so no term is rounded.
//
// With a USD budget set, a model that may serve a call and has no price is
// a load error, never a silent $0: give it input_per_1m/output_per_1m, or
// free: true for a model that truly costs nothing.
//
// # Schema
//
// All sections and fields, with example values:
//
//	version: 1                    # required
//	name: devops                  # team/policy name
//	extends: default.yaml         # base policy (kept as data)
//	models:                       # name -> spec; adds to / overrides the catalog
//	  gpt-4o: {provider: openai, input_per_1m: 2.50, output_per_1m: 10.00,
//	           cached_input_per_1m: 1.25, cache_write_per_1m: 0,
//	           context_window: 128000, max_output_tokens: 16384, encoding: o200k_base}
//	  my-llama: {provider: local, free: true, context_window: 32768}
//	  sonar: {provider: perplexity, input_per_1m: 1, output_per_1m: 1,
//	          request_fee: 0.005}     # USD per request, on top of its tokens
//	  my-embedder: {provider: local, input_per_1m: 0.01,
//	                embeddings: true}  # input only; never a chat model
//	limits:                       # run guard
//	  max_calls: 10               # LLM calls per run; 0 = unlimited
//	  run_timeout: 5m
//	timeouts:
//	  call: 30s                   # one attempt
//	  total: 60s                  # the call with all its attempts
//	  first_token: 10s
//	  idle: 15s
//	  tool: 30s
//	  models:                     # limits of some models: the first entry that matches wins
//	    - match: ["o3*", "gpt-5*"]  # names or path.Match patterns ("openai/o3": its name after the last '/' too)
//	      call: 10m               # each attempt of such a model (after routing and fallback)
//	      total: 10m              # a call that asked for one; omitted: max(total, call)
//	      first_token: 10m        # omitted limits are the ones above
//	budget:
//	  request: {max_input_tokens: 10000, max_output_tokens: 2000}
//	  run: {max_tokens: 100000, max_usd: 1.00, max_calls: 0, max_wall_time: 0}
//	  team: {period: daily|monthly|rolling, window: 24h, max_usd: 100, max_tokens: 0}
//	  on_exceed: reject|downgrade|warn          # default reject
//	  downgrade_to: gpt-4o-mini                 # required for downgrade
//	  warn_at: [0.5, 0.8, 1.0]                  # fractions in (0,1]
//	  store: {kind: memory|redis, key_prefix: tokenwise, reservation_ttl: 2m,
//	          on_unavailable: fail_closed|local, local_fraction: 0.1}
//	cache:
//	  enabled: true
//	  ttl: 1h
//	  max_entries: 10000
//	  max_bytes: 64MiB
//	  scope: team|global          # default team
//	  deterministic_only: false   # default false: identical requests hit whatever their temperature
//	  store: memory|redis
//	  fail_closed: false
//	  streams: true               # default true; false: streaming requests bypass the cache
//	routing:
//	  default: gpt-4o             # calls no rule matches; empty: the model the caller asked for
//	  rules:                      # first match wins
//	    - name: cheap-tools
//	      when: {stage: tool_selection|result_analysis|final_answer,
//	             keywords: [check, status], keywords_in: last_user|conversation,
//	             regex: "(?i)analy[sz]e", min_input_tokens: 0, max_input_tokens: 0,
//	             has_tools: true, team: devops, budget_below: {scope: run|team, fraction: 0.2},
//	             requested_model: [gpt-4o, "gpt-4o-20*"]}   # the caller's model: names or path.Match patterns
//	      model: gpt-4o-mini
//	  regenerate_final: {enabled: true, model: gpt-4o}
//	  cascade: {models: [gpt-4o-mini, gpt-4o], checks: [valid_tool_json, non_empty, finish_reason]}
//	  larger_window: [gpt-4.1]
//	fallback:
//	  models: [gpt-4o, gpt-4o-mini]             # each at most once
//	  on: [rate_limited, unavailable, timeout, network, context_window, budget,
//	       content_filter, auth, bad_request]   # default: DefaultFallbackOn
//	  retry: {max_attempts: 3, base_delay: 200ms, max_delay: 10s, max_total_wait: 30s}
//	  breaker: {consecutive_failures: 5, failure_ratio: 0.5, min_requests: 10,
//	            open_for: 30s, half_open_probes: 1, window: 60s}
//	  hedge: {enabled: false, delay: 2s, percentile: 95}
//	tools:
//	  max_parallel: 4
//	  timeout: 30s
//	  on_error: observe|fail
//	  artifacts: {threshold_bytes: 8192, threshold_tokens: 0, head_lines: 20, tail_lines: 5,
//	              store: memory|dir|redis, dir: "", max_bytes: 64MiB}
//	  cache_ttl: 10m
//	  per_tool:
//	    clean_logs: {side_effects: true, idempotent: false, timeout: 60s}
//	context:
//	  max_input_tokens: 0
//	  window_fraction: 0.8        # of the routed model's context window
//	  strategies: [offload, drop, summarise]
//	  keep_last_turns: 4
//	  offload_over_bytes: 2048
//	  block_size: 10
//	  summary_model: gpt-4o-mini
//	observability: {log_level: debug|info|warn|error}
//	teams: {unknown: warn|error}      # default policy only: a call whose team has no file
//
// # Concurrency
//
// A *Policy is plain data: safe for concurrent reads, not for concurrent
// mutation. The package-level functions are safe for concurrent use.
package policies
