package openai

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/middleware"
)

// FuzzAnswersGoOpenAIReadsAreRead: tokenwise is a drop-in under go-openai,
// so an answer go-openai reads — valid JSON, a choice, no error — must not
// be refused by the provider's decoder as malformed (a server's shape that
// worked without tokenwise must work with it), and the content, refusal
// and tool calls tokenwise reads are go-openai's. (tokenwise reads more
// than go-openai: numbers written as floats, content parts. It refuses on
// purpose one thing go-openai reads: a null tool call, which would reach
// the agent as a call of no id and no name.)
func FuzzAnswersGoOpenAIReadsAreRead(f *testing.F) {
	for _, s := range []string{
		`{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`,
		`{"choices":[{"index":0,"message":{"role":"assistant","content":[{"type":"text","text":"Hi"}]},"finish_reason":"stop"}]}`,
		`{"choices":[{"message":{"content":null,"tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}`,
		`{"choices":[{"message":null}],"usage":null}`,
		`{"choices":[{"index":1,"message":{"content":"b"}},{"index":0,"message":{"content":"a","refusal":"r"}}]}`,
		`{"choices":[{"message":{"tool_calls":[null]}}]}`,
		`{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"error":null}`,
		`{"error":{},"choices":[{"index":0,"message":{"content":"Hi"},"finish_reason":"stop"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var ref openai.ChatCompletionResponse
		if json.Unmarshal(body, &ref) != nil || len(ref.Choices) == 0 {
			return
		}
		// encoding/json matches member names without regard to case
		// ("Choices" for "choices"); the official SDKs and servers do not.
		var tree any
		if json.Unmarshal(body, &tree) != nil || hasUpperKey(tree) {
			return
		}
		var probe struct {
			Error json.RawMessage `json:"error"`
		}
		if json.Unmarshal(body, &probe) == nil && mayBeError(probe.Error) {
			return // an error object: the transport returns it as the provider's error
		}
		resp, apiErr, err := decodeResponse(body)
		if err != nil && err.Error() == "tool call is null" {
			return // a null tool call, which go-openai reads as one of no id and no name: refused on purpose
		}
		if err != nil || apiErr != nil {
			t.Fatalf("go-openai reads %s\nas %+v; the provider's decoder refuses it: %v %v", body, ref.Choices, err, apiErr)
		}
		if len(ref.Choices) != 1 {
			return // which choice is the core's, aside
		}
		m := ref.Choices[0].Message
		var toolCalls []middleware.ToolCall
		for _, tc := range m.ToolCalls {
			toolCalls = append(toolCalls, middleware.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
		}
		got := resp.Message.ToolCalls
		if len(got) == 0 {
			got = nil
		}
		if len(m.MultiContent) == 0 && resp.Message.Content != m.Content || resp.Refusal != m.Refusal || !reflect.DeepEqual(got, toolCalls) {
			t.Fatalf("%s\ngo-openai reads content %q, refusal %q, tool calls %+v;\ntokenwise %q, %q, %+v", body, m.Content, m.Refusal, toolCalls, resp.Message.Content, resp.Refusal, got)
		}
	})
}

// hasUpperKey reports whether a decoded JSON value has an object member
// whose name holds an upper-case ASCII letter.
func hasUpperKey(v any) bool {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if strings.ContainsFunc(k, func(r rune) bool { return r >= 'A' && r <= 'Z' }) || hasUpperKey(e) {
				return true
			}
		}
	case []any:
		for _, e := range v {
			if hasUpperKey(e) {
				return true
			}
		}
	}
	return false
}

// FuzzChunksGoOpenAIReadsAreRead: the same for a stream's chunks: a data
// line go-openai reads as a chunk (valid JSON, no error object) is read by
// the provider's stream decoder, with the same content and finish reason
// for a chunk of one choice. (It refuses on purpose what go-openai reads
// as an empty chunk but the Accumulator could not place: a null tool call,
// a tool call index out of range.)
func FuzzChunksGoOpenAIReadsAreRead(f *testing.F) {
	for _, s := range []string{
		`{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}`,
		`{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"a","type":"function","function":{"name":"f","arguments":"{"}}]},"finish_reason":null}]}`,
		`{"id":"c","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`,
		`{"choices":[{"delta":{},"finish_reason":"stop"}],"x_groq":{"usage":{"prompt_tokens":1}}}`,
		`{"choices":[],"prompt_filter_results":[{"prompt_index":0}]}`,
		`{"id":"c","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}],"error":null}`,
		"{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"caf\xc3\"},\"finish_reason\":null}]}", // half a rune
		"{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\x80\\n\xed\xa0\x80\"},\"finish_reason\":\"stop\"}]}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var ref openai.ChatCompletionStreamResponse
		if json.Unmarshal(data, &ref) != nil {
			return
		}
		var tree any
		if json.Unmarshal(data, &tree) != nil || hasUpperKey(tree) {
			return
		}
		m, ok := tree.(map[string]any)
		if !ok {
			return // not an object
		}
		if e, err := json.Marshal(m["error"]); err == nil && mayBeError(e) {
			return // an error object: the provider's error
		}
		c, _, apiErr, err := decodeChunk(data, true)
		if err != nil && (err.Error() == "tool call delta is null" || err.Error() == "tool call index out of range") {
			return
		}
		if err != nil || apiErr != nil {
			if errors.Is(err, errNoChoices) {
				return // no choices and no usage: an event the stream reader skips (go-openai hands it over empty)
			}
			t.Fatalf("go-openai reads %s\nas %+v; the stream decoder refuses it: %v %v", data, ref.Choices, err, apiErr)
		}
		if len(ref.Choices) != 1 || ref.Choices[0].Index != 0 {
			return
		}
		d := ref.Choices[0]
		if c.Content != d.Delta.Content || c.FinishReason != string(d.FinishReason) || c.Refusal != d.Delta.Refusal {
			t.Fatalf("%s\ngo-openai reads content %q, finish %q, refusal %q; tokenwise %q, %q, %q", data, d.Delta.Content, d.FinishReason, d.Delta.Refusal, c.Content, c.FinishReason, c.Refusal)
		}
	})
}

// mayBeError reports whether the value of an "error" member may be an
// error to the provider's decoder: a non-empty string, or an object with
// a message, a type or a code that is neither null nor "" (servers send
// "error": null, and empty objects, beside a valid answer: no error).
func mayBeError(v json.RawMessage) bool {
	var str string
	if json.Unmarshal(v, &str) == nil {
		return str != ""
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(v, &obj) != nil || obj == nil {
		return false
	}
	for _, k := range [...]string{"message", "type", "code"} {
		if m, ok := obj[k]; ok && string(m) != "null" && string(m) != `""` {
			return true
		}
	}
	return false
}
