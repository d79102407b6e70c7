package openai

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

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
		if json.Unmarshal(body, &probe) == nil && len(probe.Error) > 0 && string(probe.Error) != "null" {
			return // an error object: the transport returns it as the provider's error
		}
		resp, apiErr, err := decodeResponse(body)
		if err != nil && err.Error() == "tool call is null" {
			return // a null tool call, which go-openai reads as one of no id and no name: refused on purpose
		}
		if err != nil || apiErr != nil {
			t.Fatalf("go-openai reads %s\nas %+v; the provider's decoder refuses it: %v %v", body, ref.Choices, err, apiErr)
		}
		if len(ref.Choices) != 1 || !utf8.Valid(body) {
			return // which choice is the core's, and invalid UTF-8 (U+FFFD in encoding/json), aside
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
