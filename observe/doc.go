// Package observe is where tokenwise is watched from: it turns the core's
// events into logs and traces, and renders a run's report:
//
//   - [Report] renders a run (middleware.Run) as a human-readable story,
//     one line per call, and [ReportJSON] as JSON.
//   - [Slog] is a middleware.Observer that logs every event with log/slog:
//     one line per finished call (model, stage, tokens, USD, latency, cache
//     status, routing rule), warnings for retries, fallbacks, breaker
//     changes, budget warnings and rejected policy reloads, and debug lines
//     for the rest.
//   - [Recorder] is a middleware that writes every LLM call (the request as
//     the caller sent it, the answer, its usage and cost) as one line of a
//     JSONL trace; [ReadTrace] reads it back and [Replay] runs a trace
//     through a policy offline to show what it would have cost and saved.
//
// # Trace format
//
// A trace is JSON Lines, one [Record] per call, in the order the calls
// finished. Every line is a JSON object:
//
//	{"v":1,                                   // format version
//	 "run":"ticket-4711","seq":3,             // run id and call number ("" / 0 outside a run)
//	 "team":"devops","stage":"result_analysis",
//	 "time":"2025-01-02T15:04:05.123Z",      // when the call started
//	 "request":{"model":"gpt-4o",             // as the caller sent it, before routing
//	   "messages":[{"role":"user","content":"..."},
//	               {"role":"assistant","tool_calls":[{"id":"c1","name":"check_disk","arguments":"{}"}]},
//	               {"role":"tool","tool_call_id":"c1","content":"..."}],
//	   "tools":[{"name":"check_disk","description":"...","parameters":{...}}],
//	   "tool_choice":"auto","temperature":0,"top_p":1,"seed":1,"stop":["x"],
//	   "max_tokens":256,"response_format":{...},"n":1,"extra":{...},"stream":true},
//	 "response":{"model":"gpt-4o-mini-2024-07-18","content":"...","reasoning":"...",
//	   "tool_calls":[...],"finish_reason":"stop",
//	   "usage":{"input_tokens":812,"output_tokens":31,"cached_input_tokens":0,
//	            "cache_write_tokens":0,"reasoning_tokens":0},
//	   "from_cache":false},
//	 "model":"gpt-4o-mini",                   // the model that answered (after routing and fallback)
//	 "rule":"rule 1 \"cheap\": stage=tool_selection",
//	 "cache":"miss",
//	 "cost_usd_pico":162000000,
//	 "latency_ms":30.2,
//	 "error":""}                              // the call's error, when it failed (no response then)
//
// Optional fields are omitted when empty. Readers ignore unknown fields, so
// later versions may add some; a change of meaning bumps "v".
//
// # Concurrency
//
// Slog and Recorder are safe for concurrent use.
package observe
