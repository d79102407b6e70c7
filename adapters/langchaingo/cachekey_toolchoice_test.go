package langchaingo_test

import (
	"testing"

	"github.com/tmc/langchaingo/llms"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
)

// TestCacheTellsToolChoiceFormsApart: langchaingo's tool choice and its
// legacy function call behavior reach the provider in forms the core's
// ToolChoice (a mode or a name) does not tell apart: function_call "none"
// (which does not stop tool calls) and tool_choice "none", function_call
// "auto" and tool_choice "auto", {"type": "none"} and "none", an object
// naming f and the bare string "f" (which the provider refuses). Each
// pair, in either order, never shares an answer, as the property
// (checkNoSharedAnswer) has it: bodies sent otherwise are other requests.
func TestCacheTellsToolChoiceFormsApart(t *testing.T) {
	srv := openaitest.NewServer(t)
	tools := llms.WithTools([]llms.Tool{{Type: "function", Function: &llms.FunctionDefinition{Name: "f", Parameters: map[string]any{"type": "object"}}}})
	q := []llms.MessageContent{human("what is f?")}
	for _, c := range []struct {
		what string
		a, b llms.CallOption
	}{
		{"function_call none, tool_choice none", llms.WithFunctionCallBehavior(llms.FunctionCallBehaviorNone), llms.WithToolChoice("none")},
		{"function_call auto, tool_choice auto", llms.WithFunctionCallBehavior(llms.FunctionCallBehaviorAuto), llms.WithToolChoice("auto")},
		{"{type: none}, none", llms.WithToolChoice(llms.ToolChoice{Type: "none"}), llms.WithToolChoice("none")},
		{"an object naming f, the string f", llms.WithToolChoice(llms.ToolChoice{Type: "function", Function: &llms.FunctionReference{Name: "f"}}), llms.WithToolChoice("f")},
		{"tool_choice auto, with function_call none too", llms.WithToolChoice("auto"), func(o *llms.CallOptions) {
			o.ToolChoice, o.FunctionCallBehavior = "auto", llms.FunctionCallBehaviorNone
		}},
	} {
		t.Run(c.what, func(t *testing.T) {
			checkNoSharedAnswer(t, srv, call{q, []llms.CallOption{tools, c.a}}, call{q, []llms.CallOption{tools, c.b}}, c.what)
			checkNoSharedAnswer(t, srv, call{q, []llms.CallOption{tools, c.b}}, call{q, []llms.CallOption{tools, c.a}}, c.what+", reversed")
		})
	}
}

// TestCacheTellsToolCallTypesApart: an assistant message's tool call is
// sent with its Type as given ("function", or "" when left unset, which
// the provider refuses); the core's tool calls have none. A conversation
// whose call has another type than an otherwise equal one's never shares
// its answer, in either order.
func TestCacheTellsToolCallTypesApart(t *testing.T) {
	srv := openaitest.NewServer(t)
	q := human("what is f?")
	turn := func(typ string) []llms.MessageContent {
		return []llms.MessageContent{q,
			{Role: llms.ChatMessageTypeAI, Parts: []llms.ContentPart{llms.ToolCall{ID: "c1", Type: typ, FunctionCall: &llms.FunctionCall{Name: "f", Arguments: "{}"}}}},
			{Role: llms.ChatMessageTypeTool, Parts: []llms.ContentPart{llms.ToolCallResponse{ToolCallID: "c1", Name: "f", Content: "42"}}}}
	}
	checkNoSharedAnswer(t, srv, call{turn("function"), nil}, call{turn(""), nil}, "a call of type function, then one of none")
	checkNoSharedAnswer(t, srv, call{turn(""), nil}, call{turn("function"), nil}, "a call of no type, then one of type function")
}
