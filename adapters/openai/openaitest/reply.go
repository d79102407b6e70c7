package openaitest

import (
	"fmt"
	"net/http"
	"time"
)

// Reply is what the server answers to one request: a completion (Content,
// Reasoning, ToolCalls), an API error (Status, Error) or a scripted Fault,
// with optional timing. The zero Reply is an empty completion with
// finish_reason "stop".
//
// A Reply answers streaming and non-streaming requests alike; the server
// picks the wire format from the request's "stream" field.
type Reply struct {
	// Content is the assistant's text. On the wire, message.content is null
	// when Content is empty and ToolCalls is not.
	Content string
	// Reasoning is sent as reasoning_content (as DeepSeek and vLLM do) and
	// counted as reasoning tokens.
	Reasoning string
	// ToolCalls are the function calls of the turn, streamed one after the
	// other by index. An empty ID is replaced by "call_<request>_<index>".
	ToolCalls []ToolCall
	// FinishReason defaults to "tool_calls" when ToolCalls is non-empty and
	// to "stop" otherwise.
	FinishReason string
	// Model is the model named in the response; empty echoes the request's.
	Model string
	// Usage, when non-nil, replaces the computed usage completely (see
	// [UsageFor]); use it to script cached or reasoning tokens.
	Usage *Usage

	// Body, when non-nil, is sent verbatim as the body of a non-streaming
	// answer (status 200), for shapes the fields above do not model: n
	// choices, logprobs, refusal, audio, annotations. Streaming requests
	// ignore it.
	Body []byte

	// Status is the HTTP status. Zero means 200, or 500 when Error is set.
	// A Status of 400 or more without Error gets a generic error body.
	Status int
	// Error, when non-nil, makes the reply an OpenAI error response:
	// {"error":{"message", "type", "param", "code"}}.
	Error *APIError
	// RetryAfter, when positive, is sent as a Retry-After header in whole
	// seconds, rounded up. Use Header for an HTTP date or retry-after-ms.
	RetryAfter time.Duration
	// Header holds extra response headers; they override the defaults.
	Header http.Header

	// Fault breaks the response on purpose; see [FaultKind]. An error reply
	// (Error or Status set) honours FaultStall only.
	Fault Fault

	// Latency is waited before the first byte is written.
	Latency time.Duration
	// ChunkLatency is waited before every SSE data line after the first,
	// "data: [DONE]" included. Ignored for non-streaming requests.
	ChunkLatency time.Duration
	// ChunkSize is the number of characters (runes) per content, reasoning
	// or arguments delta when streaming. Zero means [DefaultChunkSize].
	ChunkSize int

	// Refusal is the model's refusal text: message.refusal, or refusal
	// deltas when streaming.
	Refusal string
	// Alternatives are the choices after the first (index 1, 2, ...), as
	// for a request with n > 1: their Content, Reasoning, Refusal,
	// ToolCalls and FinishReason are used. Streamed, their chunks follow
	// the first choice's (or are interleaved with them, with a Shape).
	// Usage counts every choice's completion tokens, as OpenAI does.
	Alternatives []Reply
	// Shape, when non-nil, streams the reply in a random valid shape
	// (see [Shape]) instead of OpenAI's own order.
	Shape *Shape
	// Raw, when non-nil, is the exact response body of a successful reply,
	// streaming or not: each piece is written and flushed on its own, and
	// nothing is added ("data: [DONE]" neither). Use it to play malformed
	// or unusual streams byte for byte. Content and the other answer
	// fields then only serve to compute the usage.
	Raw [][]byte
}

// DefaultChunkSize is the number of characters per streamed delta when
// Reply.ChunkSize is zero.
const DefaultChunkSize = 8

// Usage is the token usage reported for a reply. See [UsageFor] for how the
// server computes it when a Reply does not set one.
type Usage struct {
	PromptTokens     int
	CompletionTokens int
	// TotalTokens zero means PromptTokens + CompletionTokens.
	TotalTokens int
	// CachedTokens is reported as prompt_tokens_details.cached_tokens.
	CachedTokens int
	// ReasoningTokens is reported as completion_tokens_details.reasoning_tokens.
	ReasoningTokens int
}

// APIError is the body of an OpenAI error response. An empty Param or Code is
// sent as JSON null, as OpenAI does.
type APIError struct {
	Message string
	Type    string
	Param   string
	Code    string
}

// Fault is a scripted failure of the response itself, as opposed to an API
// error that the server answers cleanly.
type Fault struct {
	Kind FaultKind
	// After is the number of SSE chunks (JSON data lines) written before the
	// fault strikes in a stream. It is clamped to the number of chunks, so a
	// large value strikes just before "data: [DONE]".
	After int
}

// FaultKind names a way to break a response.
type FaultKind int

const (
	// FaultNone answers normally.
	FaultNone FaultKind = iota
	// FaultStall writes nothing, not even headers, and blocks until the
	// client goes away (or the server is closed).
	FaultStall
	// FaultStallStream writes the headers and, when streaming, After chunks,
	// flushes them and then blocks until the client goes away. For a
	// non-streaming request only the headers are sent.
	FaultStallStream
	// FaultCut aborts the connection after After chunks without "[DONE]":
	// an HTTP client sees an unexpected EOF (io.ErrUnexpectedEOF from the
	// body), never a clean end. For a non-streaming request the first half of
	// the JSON body is sent before the abort.
	FaultCut
	// FaultEOF ends the response cleanly after After chunks, without
	// "[DONE]": the body ends with a plain io.EOF, as from a provider or proxy
	// that drops the terminator. For a non-streaming request the body is the
	// first half of the JSON, ended cleanly.
	FaultEOF
	// FaultMalformed inserts one malformed SSE data line (half a JSON chunk)
	// before chunk After and then streams on normally. For a non-streaming
	// request the status is 200 and the body is half of the JSON.
	FaultMalformed
)

var faultNames = [...]string{"none", "stall", "stall-stream", "cut", "eof", "malformed"}

// String returns a short name for the fault kind.
func (k FaultKind) String() string {
	if k >= 0 && int(k) < len(faultNames) {
		return faultNames[k]
	}
	return fmt.Sprintf("FaultKind(%d)", int(k))
}

// Text returns a reply with the given assistant text.
func Text(content string) Reply {
	return Reply{Content: content}
}

// ToolCalls returns a reply that calls the given tools in one turn
// (content null, finish_reason "tool_calls").
func ToolCalls(calls ...ToolCall) Reply {
	return Reply{ToolCalls: calls}
}

// Call returns a function tool call; arguments is the JSON-encoded argument
// object, e.g. `{"path":"/"}`.
func Call(id, name, arguments string) ToolCall {
	return ToolCall{ID: id, Type: "function", Function: FunctionCall{Name: name, Arguments: arguments}}
}

// Error returns an API error reply with the given status and error fields.
func Error(status int, errType, code, message string) Reply {
	return Reply{Status: status, Error: &APIError{Message: message, Type: errType, Code: code}}
}

// RateLimited returns a 429 rate_limit_exceeded reply with a Retry-After
// header (when retryAfter is positive) and OpenAI's body.
func RateLimited(retryAfter time.Duration) Reply {
	secs := int((retryAfter + time.Second - 1) / time.Second)
	r := Error(http.StatusTooManyRequests, "requests", "rate_limit_exceeded", fmt.Sprintf(
		"Rate limit reached for requests on tokens per min (TPM): Limit 30000, Used 30000, Requested 1000. Please try again in %ds. Visit https://platform.openai.com/account/rate-limits to learn more.", secs))
	r.RetryAfter = retryAfter
	return r
}

// InsufficientQuota returns OpenAI's 429 insufficient_quota reply, which is
// not worth retrying.
func InsufficientQuota() Reply {
	return Error(http.StatusTooManyRequests, "insufficient_quota", "insufficient_quota",
		"You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.")
}

// ServerError returns OpenAI's 500 server_error reply.
func ServerError() Reply {
	return Error(http.StatusInternalServerError, "server_error", "",
		"The server had an error while processing your request. Sorry about that!")
}

// Unavailable returns OpenAI's 503 reply for an overloaded engine.
func Unavailable() Reply {
	return Error(http.StatusServiceUnavailable, "server_error", "",
		"The engine is currently overloaded, please try again later.")
}

// ContextLengthExceeded returns OpenAI's 400 context_length_exceeded reply
// for a model with a window of limit tokens and a request of got tokens.
func ContextLengthExceeded(limit, got int) Reply {
	r := Error(http.StatusBadRequest, "invalid_request_error", "context_length_exceeded", fmt.Sprintf(
		"This model's maximum context length is %d tokens. However, your messages resulted in %d tokens. Please reduce the length of the messages.", limit, got))
	r.Error.Param = "messages"
	return r
}

// InvalidAPIKey returns OpenAI's 401 invalid_api_key reply.
func InvalidAPIKey() Reply {
	return Error(http.StatusUnauthorized, "invalid_request_error", "invalid_api_key",
		"Incorrect API key provided: sk-test****. You can find your API key at https://platform.openai.com/account/api-keys.")
}

// ContentFilterError returns the 400 content_filter reply that Azure OpenAI
// sends when the prompt is filtered. A completion cut by the filter is
// scripted as Reply{Content: "...", FinishReason: "content_filter"} instead.
func ContentFilterError() Reply {
	r := Error(http.StatusBadRequest, "invalid_request_error", "content_filter",
		"The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry.")
	r.Error.Param = "prompt"
	return r
}

// faultText is the content of the fault constructors' replies: long enough
// for several chunks at DefaultChunkSize.
const faultText = "This answer is broken on purpose by a scripted fault."

// Stall returns a reply that sends nothing and blocks until the client gives
// up (FaultStall).
func Stall() Reply {
	return Reply{Fault: Fault{Kind: FaultStall}}
}

// StallAfter returns a reply that sends the headers and, when streaming, the
// given number of chunks, then blocks until the client gives up
// (FaultStallStream).
func StallAfter(chunks int) Reply {
	return Reply{Content: faultText, Fault: Fault{Kind: FaultStallStream, After: chunks}}
}

// CutAfter returns a reply whose connection is aborted after the given
// number of chunks, without "[DONE]" (FaultCut).
func CutAfter(chunks int) Reply {
	return Reply{Content: faultText, Fault: Fault{Kind: FaultCut, After: chunks}}
}

// EOFAfter returns a reply whose body ends cleanly after the given number of
// chunks, without "[DONE]" (FaultEOF).
func EOFAfter(chunks int) Reply {
	return Reply{Content: faultText, Fault: Fault{Kind: FaultEOF, After: chunks}}
}

// Malformed returns a reply with a 200 status and a body that is not valid
// JSON, or when streaming a malformed data line right after the first chunk
// (FaultMalformed).
func Malformed() Reply {
	return Reply{Content: faultText, Fault: Fault{Kind: FaultMalformed, After: 1}}
}
