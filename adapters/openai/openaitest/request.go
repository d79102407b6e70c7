package openaitest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ChatRequest is a Chat Completions request body as the server decodes it.
//
// Decoding is lenient: unknown fields are ignored (the raw body stays
// available in [Recorded].Body) and a top-level field of an unexpected JSON
// type is left at its zero value instead of failing the request. Pointer fields are nil
// when the client omitted them, so tests can tell "omitted" from "zero"
// (for example a temperature of 0 from the provider default).
type ChatRequest struct {
	Model               string          `json:"model"`
	Messages            []Message       `json:"messages"`
	Tools               []Tool          `json:"tools,omitempty"`
	ToolChoice          json.RawMessage `json:"tool_choice,omitempty"` // "auto", "none", "required" or an object
	ParallelToolCalls   *bool           `json:"parallel_tool_calls,omitempty"`
	Stream              bool            `json:"stream,omitempty"`
	StreamOptions       *StreamOptions  `json:"stream_options,omitempty"`
	Temperature         *float64        `json:"temperature,omitempty"`
	TopP                *float64        `json:"top_p,omitempty"`
	MaxTokens           *int            `json:"max_tokens,omitempty"`
	MaxCompletionTokens *int            `json:"max_completion_tokens,omitempty"`
	N                   *int            `json:"n,omitempty"`
	Seed                *int64          `json:"seed,omitempty"`
	Stop                json.RawMessage `json:"stop,omitempty"`            // a string or an array of strings
	ResponseFormat      json.RawMessage `json:"response_format,omitempty"` // kept verbatim
	ReasoningEffort     string          `json:"reasoning_effort,omitempty"`
	User                string          `json:"user,omitempty"`
}

// IncludeUsage reports whether the request asked for a usage chunk at the end
// of a stream (stream_options.include_usage).
func (r *ChatRequest) IncludeUsage() bool {
	return r.StreamOptions != nil && r.StreamOptions.IncludeUsage
}

// LastMessage returns the last message of the request, or the zero Message
// when there is none.
func (r *ChatRequest) LastMessage() Message {
	if len(r.Messages) == 0 {
		return Message{}
	}
	return r.Messages[len(r.Messages)-1]
}

// StreamOptions are the request's stream_options.
type StreamOptions struct {
	IncludeUsage bool `json:"include_usage,omitempty"`
}

// Message is one message of a request.
type Message struct {
	Role             string     `json:"role"`
	Content          Content    `json:"content"`
	Name             string     `json:"name,omitempty"`
	ToolCalls        []ToolCall `json:"tool_calls,omitempty"`   // assistant messages
	ToolCallID       string     `json:"tool_call_id,omitempty"` // tool messages
	ReasoningContent string     `json:"reasoning_content,omitempty"`
}

// Content is a message's content, which on the wire is a string, an array of
// parts or null.
type Content struct {
	// Text is the content when it was sent as a JSON string.
	Text string
	// Parts is the content when it was sent as a JSON array; nil otherwise.
	Parts []Part
}

// String returns the text of the content: Text, or for array content the
// text of every "text" part concatenated in order.
func (c Content) String() string {
	if c.Parts == nil {
		return c.Text
	}
	var b strings.Builder
	for _, p := range c.Parts {
		if p.Type == "text" {
			b.WriteString(p.Text)
		}
	}
	return b.String()
}

// UnmarshalJSON accepts a string, an array of parts or null. Any other JSON
// value leaves the content empty.
func (c *Content) UnmarshalJSON(data []byte) error {
	*c = Content{}
	data = bytes.TrimSpace(data)
	switch {
	case len(data) == 0:
		return nil
	case data[0] == '"':
		return json.Unmarshal(data, &c.Text)
	case data[0] == '[':
		parts := []Part{}
		if err := json.Unmarshal(data, &parts); err != nil {
			return err
		}
		c.Parts = parts
	}
	return nil
}

// MarshalJSON writes Parts as an array when it is non-nil, Text as a string
// otherwise.
func (c Content) MarshalJSON() ([]byte, error) {
	if c.Parts != nil {
		return json.Marshal(c.Parts)
	}
	return json.Marshal(c.Text)
}

// Part is one element of array content.
type Part struct {
	// Type is the part type: "text", "image_url", "input_audio", "file", ...
	Type string
	// Text is the text of a "text" part.
	Text string
	// Raw is the whole part as sent, for the fields Part does not model.
	Raw json.RawMessage
}

// UnmarshalJSON decodes type and text and keeps the raw part.
func (p *Part) UnmarshalJSON(data []byte) error {
	var v struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	err := json.Unmarshal(data, &v)
	var typeErr *json.UnmarshalTypeError
	if err != nil && !errors.As(err, &typeErr) {
		return err
	}
	*p = Part{Type: v.Type, Text: v.Text, Raw: bytes.Clone(data)}
	return nil
}

// MarshalJSON writes Raw when it is set, else a part built from Type and Text.
func (p Part) MarshalJSON() ([]byte, error) {
	if len(p.Raw) > 0 {
		return p.Raw, nil
	}
	return json.Marshal(struct {
		Type string `json:"type"`
		Text string `json:"text,omitempty"`
	}{p.Type, p.Text})
}

// ToolCall is a function call made by the assistant: in a request's
// assistant message, or in a scripted [Reply].
type ToolCall struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"` // "function"; empty means "function" in a Reply
	Function FunctionCall `json:"function"`
}

// FunctionCall is the function name and its JSON-encoded arguments.
type FunctionCall struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// Tool is a tool declared in a request.
type Tool struct {
	Type     string      `json:"type"`
	Function FunctionDef `json:"function"`
}

// FunctionDef declares a function tool.
type FunctionDef struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// decodeRequest decodes body leniently. It fails only when body is not
// valid JSON or not a JSON object. A top-level field of the wrong type is
// dropped and the body decoded again, so that it stays at its zero value
// (nil for pointers); a mistyped nested value is left as decoded.
func decodeRequest(body []byte) (*ChatRequest, error) {
	if !json.Valid(body) {
		return nil, errors.New("body is not valid JSON")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, errors.New("body is not a JSON object")
	}
	for {
		var req ChatRequest
		err := json.Unmarshal(body, &req)
		var typeErr *json.UnmarshalTypeError
		if err == nil {
			return &req, nil
		}
		if !errors.As(err, &typeErr) {
			return nil, err
		}
		if _, ok := fields[typeErr.Field]; !ok {
			return &req, nil
		}
		delete(fields, typeErr.Field)
		if body, err = json.Marshal(fields); err != nil {
			return nil, err
		}
	}
}

// CheckToolPairing reports the first break of OpenAI's rule for tool
// messages in msgs, as a request's messages: an assistant message with tool
// calls is followed by exactly one tool message per call, and a tool
// message only ever answers the assistant message just before it. OpenAI
// refuses such a request with a 400; tests of code that rewrites
// conversations (compaction, trimming) check their output with it.
func CheckToolPairing(msgs []Message) error {
	for i := 0; i < len(msgs); i++ {
		m := msgs[i]
		switch {
		case m.Role == "tool":
			return fmt.Errorf("message %d: tool result %q without its assistant message", i, m.ToolCallID)
		case m.Role == "assistant" && len(m.ToolCalls) > 0:
			want := map[string]bool{}
			for _, tc := range m.ToolCalls {
				want[tc.ID] = true
			}
			j := i + 1
			for ; j < len(msgs) && msgs[j].Role == "tool"; j++ {
				if !want[msgs[j].ToolCallID] {
					return fmt.Errorf("message %d: tool result %q answers no call of message %d", j, msgs[j].ToolCallID, i)
				}
				delete(want, msgs[j].ToolCallID)
			}
			if len(want) > 0 {
				return fmt.Errorf("message %d: %d tool calls without a result", i, len(want))
			}
			i = j - 1
		}
	}
	return nil
}
