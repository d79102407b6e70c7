// Package sse is an output adapter for web clients: it streams the final
// answer of an LLM call, or of a whole agent run, to a web client as
// Server-Sent Events: one "data:" event per chunk of text, flushed at once,
// and "data: [DONE]" at the end.
//
// The wire format: each chunk's text is sent as an event whose data lines
// are the text's lines (a client joins them with "\n", per the SSE
// specification); a line ends where the specification ends one, at "\n",
// "\r\n" or a lone "\r", so every line break of the text reaches the
// client as a "\n" (the one line break an event's data can carry); a
// "\r\n" split across two chunks is one line break too, sent with the
// first chunk (a chunk of that "\n" alone sends no event). A failure after
// the first event is sent as an "event: error" whose data is the error
// text, and no "[DONE]" follows, so a client never takes a cut stream for
// a complete answer. A failure before
// the first event is an HTTP error status instead (504 for timeouts, 429
// for rate limits and budgets, 502 otherwise).
//
// When the client disconnects, the request's context ends, and with it the
// upstream call: a [RunFunc] must use the context it is given. So does it
// when the client stops reading with its connection open: each write has
// a deadline ([WithWriteTimeout], [DefaultWriteTimeout] by default),
// armed again for every event, and a write that fails ends the context.
package sse
