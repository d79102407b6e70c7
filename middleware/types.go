package middleware

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"math"
	"strings"
)

// Role is the author of a message.
type Role string

// The roles of the OpenAI chat format, which every supported framework maps onto.
const (
	RoleSystem    Role = "system"
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
	RoleTool      Role = "tool"
)

// Finish reasons reported in [Response.FinishReason] and [Chunk.FinishReason].
const (
	FinishStop          = "stop"
	FinishLength        = "length"
	FinishToolCalls     = "tool_calls"
	FinishContentFilter = "content_filter"
)

// FinishedNormally reports whether a finish reason is a normal end of an
// answer: stop, tool calls, or the legacy function call — or a server's
// own name for stop, the model's natural end: Together's "eos",
// text-generation-inference's "eos_token" (before 2.2.1) and
// "stop_sequence", Anthropic's "end_turn"; not length, a content filter,
// an unknown reason or none.
func FinishedNormally(reason string) bool {
	switch reason {
	case FinishStop, FinishToolCalls, "function_call", "eos", "eos_token", "stop_sequence", "end_turn":
		return true
	}
	return false
}

// Part is one part of a multi-part message (text, an image, a file).
type Part struct {
	Type     string // "text", "image_url", "file", "input_audio", ...
	Text     string // for Type "text"
	URL      string // for Type "image_url": an http(s) or data: URL
	Detail   string // image detail hint ("low", "high", "auto"), empty = provider default
	MIMEType string // for binary data
	Data     []byte // binary data, when the framework carries raw bytes
}

// Message is one message of a conversation.
//
// A plain text message has Content and no Parts. A multi-part message has
// Parts; its Content is empty. Use [Message.Text] to read the text of either.
type Message struct {
	Role       Role
	Content    string
	Parts      []Part
	Name       string     // optional participant name
	ToolCalls  []ToolCall // assistant messages: the tools the model asked for
	ToolCallID string     // tool messages: the call this result answers
	Reasoning  string     // assistant messages: reasoning text, when the provider returns it
	// FunctionCall is an assistant message's call in the legacy functions
	// API (OpenAI's "function_call": its Name and Arguments; ID unused),
	// nil when it has none. The model reads it as it reads ToolCalls.
	FunctionCall *ToolCall
	// Refusal is an assistant message's refusal text (OpenAI's "refusal"
	// member of a message of the history), which the model reads.
	Refusal string
}

// Text returns the message's text: Content, or the text parts joined by newlines.
func (m *Message) Text() string {
	if len(m.Parts) == 0 {
		return m.Content
	}
	var b strings.Builder
	for _, p := range m.Parts {
		if p.Type != "text" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.Text)
	}
	return b.String()
}

// Clone returns a deep copy of the message.
func (m Message) Clone() Message {
	if m.Parts != nil {
		parts := make([]Part, len(m.Parts))
		copy(parts, m.Parts)
		for i := range parts {
			parts[i].Data = bytes.Clone(parts[i].Data) // nil stays nil, empty stays empty
		}
		m.Parts = parts
	}
	if m.ToolCalls != nil {
		m.ToolCalls = append([]ToolCall(nil), m.ToolCalls...)
	}
	if m.FunctionCall != nil {
		fc := *m.FunctionCall
		m.FunctionCall = &fc
	}
	return m
}

// ToolCall is a model's request to run one tool.
type ToolCall struct {
	ID        string
	Name      string
	Arguments string // JSON text, as the model wrote it
}

// Tool describes a tool offered to the model.
type Tool struct {
	Name        string
	Description string
	Parameters  []byte // JSON Schema of the arguments, as JSON text; nil = none
	Strict      bool
}

// Usage is the token usage of one call.
//
// The counts follow OpenAI's convention: InputTokens includes
// CachedInputTokens, CacheWriteTokens and AudioInputTokens, OutputTokens
// includes ReasoningTokens and AudioOutputTokens. Adapters normalise other
// providers' usage to it.
type Usage struct {
	InputTokens       int64
	OutputTokens      int64
	CachedInputTokens int64
	CacheWriteTokens  int64
	ReasoningTokens   int64
	AudioInputTokens  int64
	AudioOutputTokens int64

	// ServiceTier is the processing tier the provider billed the tokens
	// at: its answer's service_tier ("flex", "priority", ...), else the
	// one the request asked for (see [RequestServiceTier]); "" or
	// "default" is the standard rate. Not a count: IsZero and Negative
	// ignore it, and Add keeps the later non-empty one.
	ServiceTier string
}

// Total returns input plus output tokens.
func (u Usage) Total() int64 { return SatAdd(u.InputTokens, u.OutputTokens) }

// Add returns the sum of u and v, each count saturating at the int64
// range (an absurd count a server reported never wraps a sum around).
func (u Usage) Add(v Usage) Usage {
	return Usage{
		InputTokens:       SatAdd(u.InputTokens, v.InputTokens),
		OutputTokens:      SatAdd(u.OutputTokens, v.OutputTokens),
		CachedInputTokens: SatAdd(u.CachedInputTokens, v.CachedInputTokens),
		CacheWriteTokens:  SatAdd(u.CacheWriteTokens, v.CacheWriteTokens),
		ReasoningTokens:   SatAdd(u.ReasoningTokens, v.ReasoningTokens),
		AudioInputTokens:  SatAdd(u.AudioInputTokens, v.AudioInputTokens),
		AudioOutputTokens: SatAdd(u.AudioOutputTokens, v.AudioOutputTokens),
		ServiceTier:       cmp.Or(v.ServiceTier, u.ServiceTier),
	}
}

// SatMul returns a × b, saturating at the int64 range instead of wrapping
// around.
func SatMul(a, b int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	c := a * b
	if c/b != a || (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64) {
		if (a < 0) != (b < 0) {
			return math.MinInt64
		}
		return math.MaxInt64
	}
	return c
}

// SatAdd returns a + b, saturating at the int64 range instead of wrapping
// around.
func SatAdd(a, b int64) int64 {
	s := a + b
	switch {
	case a > 0 && b > 0 && s < 0:
		return math.MaxInt64
	case a < 0 && b < 0 && s >= 0:
		return math.MinInt64
	}
	return s
}

// Counts returns u without its service tier: the counts alone, which a
// run's totals sum (a sum of calls is at no one tier; each call's cost is
// priced at its own).
func (u Usage) Counts() Usage {
	u.ServiceTier = ""
	return u
}

// IsZero reports whether no tokens were counted.
func (u Usage) IsZero() bool { return u == Usage{ServiceTier: u.ServiceTier} }

// Negative reports whether a count of u is below zero: no provider's
// count. The adapters read such a usage as none, and the Meter and the
// budget bill such a call as one without usage (an estimate): settled as
// given, it would take spend off a budget.
func (u Usage) Negative() bool {
	return u.InputTokens < 0 || u.OutputTokens < 0 || u.CachedInputTokens < 0 || u.CacheWriteTokens < 0 ||
		u.ReasoningTokens < 0 || u.AudioInputTokens < 0 || u.AudioOutputTokens < 0
}

// MaxCount is the largest count of a usage that can be a provider's: 2^50
// tokens (a million billion, beyond any model's context window by eight
// orders of magnitude, and the most a budget settles a call at). A larger
// count is a broken or hostile server's.
const MaxCount = 1 << 50

// Implausible reports whether a count of u is no provider's count: below
// zero (Negative) or beyond MaxCount. The adapters read such a usage as
// none, and the Meter and the budget bill such a call as one without
// usage (an estimate, flagged as such): settled as given, a negative count
// would take spend off a budget, and a count of 2^62 tokens would spend a
// team's whole budget on one call.
func (u Usage) Implausible() bool {
	return u.Negative() || max(u.InputTokens, u.OutputTokens, u.CachedInputTokens, u.CacheWriteTokens,
		u.ReasoningTokens, u.AudioInputTokens, u.AudioOutputTokens) > MaxCount
}

// Request is one chat completion request in the core's terms.
//
// Handlers must treat a received *Request as read-only: a middleware that
// changes a request works on [Request.Clone] and replaces any slice it
// edits. Optional sampling fields are pointers so that "not set" (the
// provider's default) differs from zero.
type Request struct {
	Model          string
	Messages       []Message
	Tools          []Tool
	ToolChoice     string // "" = provider default; "auto", "none", "required", or a tool name
	Temperature    *float64
	TopP           *float64
	Seed           *int64
	Stop           []string
	MaxTokens      int    // 0 = not set
	ResponseFormat []byte // JSON text of the response format; nil = default (text)
	N              int    // 0 = not set (one choice)

	// Extra is canonical JSON (sorted keys) of the settings that change the
	// answer but the core does not model (e.g. reasoning_effort, logit_bias,
	// top_k, penalties; the OpenAI adapter's "tools" there are the tools
	// other than function tools, as written). Adapters fill it; caches key
	// on it. nil = none.
	Extra []byte

	// Stream, when non-nil, makes the request a streaming request: the
	// innermost handler calls it once per chunk, in order, before returning
	// the assembled response. An error it returns stops the stream and is
	// returned by Handle.
	Stream StreamFunc

	// Native is the adapter's own representation of the original request
	// (for example the raw wire JSON), used to pass through fields the core
	// does not model. Middlewares keep it as it is; it is never mutated.
	Native any
}

// Clone returns a shallow copy of r: a new Request whose slices still share
// their backing arrays with r. Replace a slice before changing it.
func (r *Request) Clone() *Request {
	c := *r
	return &c
}

// DeepClone returns a copy of r that shares no mutable memory with it
// (Native is shared: it is immutable by contract).
func (r *Request) DeepClone() *Request {
	c := *r
	if r.Messages != nil {
		c.Messages = make([]Message, len(r.Messages))
		for i, m := range r.Messages {
			c.Messages[i] = m.Clone()
		}
	}
	if r.Tools != nil {
		c.Tools = make([]Tool, len(r.Tools))
		for i, t := range r.Tools {
			if t.Parameters != nil {
				t.Parameters = append([]byte(nil), t.Parameters...)
			}
			c.Tools[i] = t
		}
	}
	if r.Temperature != nil {
		v := *r.Temperature
		c.Temperature = &v
	}
	if r.TopP != nil {
		v := *r.TopP
		c.TopP = &v
	}
	if r.Seed != nil {
		v := *r.Seed
		c.Seed = &v
	}
	if r.Stop != nil {
		c.Stop = append([]string(nil), r.Stop...)
	}
	if r.Extra != nil {
		c.Extra = append([]byte(nil), r.Extra...)
	}
	if r.ResponseFormat != nil {
		c.ResponseFormat = append([]byte(nil), r.ResponseFormat...)
	}
	return &c
}

// LastMessage returns the last message, or nil when there is none.
func (r *Request) LastMessage() *Message {
	if len(r.Messages) == 0 {
		return nil
	}
	return &r.Messages[len(r.Messages)-1]
}

// LastUserText returns the text of the last user message, or "".
func (r *Request) LastUserText() string {
	for i := len(r.Messages) - 1; i >= 0; i-- {
		if r.Messages[i].Role == RoleUser {
			return r.Messages[i].Text()
		}
	}
	return ""
}

// Response is the answer to a Request: the first choice's message.
type Response struct {
	ID           string
	Model        string  // the model that answered, as the provider named it
	Message      Message // Role is RoleAssistant
	FinishReason string
	Usage        Usage
	FromCache    bool // served by a cache, no provider call was made

	// Refusal is the model's refusal text (OpenAI's message.refusal), when
	// it refused. It is a field of the response rather than of Message,
	// which requests share: it costs request decoding nothing.
	Refusal string

	// OtherChoices are the choices of an answer of n > 1 after the first
	// (which Message, Refusal and FinishReason are), as far as an adapter
	// assembled them: the OpenAI adapter sets them on a streamed answer
	// that carries no usage (cut before its usage chunk, or from a server
	// that sends none), so that the estimate of its output counts every
	// choice, not the first alone. Nil for most responses; Native holds a
	// complete answer's choices.
	OtherChoices []Choice

	// Native is the adapter's representation of the provider's response
	// (for example the raw wire JSON). It is immutable and shared by copies.
	// A middleware that changes a response it did not create keeps Native
	// only if the change is visible in the core fields (adapters compare
	// them against Native); a response it synthesises has Native nil.
	Native any
}

// Clone returns a deep copy of the response.
func (r *Response) Clone() *Response {
	c := *r
	c.Message = r.Message.Clone()
	if r.OtherChoices != nil {
		c.OtherChoices = make([]Choice, len(r.OtherChoices))
		for i, o := range r.OtherChoices {
			o.Message = o.Message.Clone()
			c.OtherChoices[i] = o
		}
	}
	return &c
}

// Choice is one choice of an answer of n > 1 besides its first (see
// Response.OtherChoices).
type Choice struct {
	Message      Message
	Refusal      string
	FinishReason string
}

// StreamFunc receives the chunks of a streaming call, one at a time and in
// order. It must not retain the chunk's slices after it returns.
type StreamFunc func(ctx context.Context, c Chunk) error

// Chunk is one piece of a streamed response.
type Chunk struct {
	Content      string
	Reasoning    string
	Refusal      string
	ToolCalls    []ToolCallDelta
	FinishReason string
	Usage        *Usage // set on the chunk that carries the final usage, if any

	// Native is the adapter's representation of the wire chunk (for example
	// the raw SSE data payload); nil for chunks a middleware synthesised.
	Native any
}

// ToolCallDelta is a fragment of a streamed tool call. The first fragment
// of a call carries its ID and Name; later ones append to Arguments.
type ToolCallDelta struct {
	Index     int
	ID        string
	Name      string
	Arguments string
}

// OffersTools reports whether req offers the model tools: function tools
// (Tools), or tools the core does not model, kept as written in Extra —
// the OpenAI adapter's custom and built-in tools ("tools") and the legacy
// functions API's definitions ("functions").
func OffersTools(req *Request) bool {
	if req == nil {
		return false
	}
	if len(req.Tools) > 0 {
		return true
	}
	if len(req.Extra) == 0 || !bytes.Contains(req.Extra, []byte(`"tools"`)) && !bytes.Contains(req.Extra, []byte(`"functions"`)) {
		return false
	}
	var m struct {
		Tools     []json.RawMessage `json:"tools"`
		Functions []json.RawMessage `json:"functions"`
	}
	if json.Unmarshal(req.Extra, &m) != nil {
		return false
	}
	return len(m.Tools) > 0 || len(m.Functions) > 0
}
