package openai

import (
	"context"
	"encoding/json"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/toolwrap"
)

// ExecuteToolCalls runs the tool calls of an assistant message (msg.ToolCalls)
// with ex and returns the tool messages to append to the conversation, one
// per call, in call order, each with its call id (and, as the OpenAI wire
// has it, no name): independent calls run in
// parallel with their own timeouts, errors and timeouts are observations,
// large results become artifact excerpts (see toolwrap.Executor.Execute).
// The error is non-nil only when ctx ended or ex fails on errors; the
// messages are returned with it.
func ExecuteToolCalls(ctx context.Context, ex *toolwrap.Executor, calls []goopenai.ToolCall) ([]goopenai.ChatCompletionMessage, error) {
	cc := make([]middleware.ToolCall, len(calls))
	for i, c := range calls {
		cc[i] = middleware.ToolCall{ID: c.ID, Name: c.Function.Name, Arguments: c.Function.Arguments}
	}
	res, err := ex.Execute(ctx, cc)
	msgs := make([]goopenai.ChatCompletionMessage, len(res))
	for i, r := range res {
		// No Name: a tool message on the wire is its role, content and
		// call id; xAI and endpoints that check the schema refuse a name.
		msgs[i] = goopenai.ChatCompletionMessage{Role: goopenai.ChatMessageRoleTool, ToolCallID: r.CallID, Content: r.Content}
	}
	return msgs, err
}

// ToolDefinitions returns ex's tools (read_artifact included when artifacts
// are on) as go-openai function tools for ChatCompletionRequest.Tools.
func ToolDefinitions(ex *toolwrap.Executor) []goopenai.Tool {
	specs := ex.Tools()
	out := make([]goopenai.Tool, len(specs))
	for i, s := range specs {
		f := &goopenai.FunctionDefinition{Name: s.Name, Description: s.Description, Strict: s.Strict}
		if len(s.Parameters) > 0 {
			f.Parameters = json.RawMessage(s.Parameters)
		} else {
			f.Parameters = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		out[i] = goopenai.Tool{Type: goopenai.ToolTypeFunction, Function: f}
	}
	return out
}
