package openai_test

import (
	"context"
	"fmt"
	"net/http"

	goopenai "github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/toolwrap"
)

// The seed's executeToolsParallel: the model asks for two tools in one turn,
// ExecuteToolCalls runs them at once and returns the tool messages in call
// order, ready to append to the conversation.
func ExampleExecuteToolCalls() {
	srv := openaitest.New()
	srv.On().Reply(openaitest.ToolCalls(
		openaitest.Call("call_1", "check_disk", `{}`),
		openaitest.Call("call_2", "check_memory", `{}`)))
	cfg := goopenai.DefaultConfig("test-key")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = &http.Client{Transport: srv.Transport()}
	client := goopenai.NewClientWithConfig(cfg)

	ex, _ := toolwrap.New([]toolwrap.Tool{
		{Name: "check_disk", Call: func(context.Context, string) (string, error) { return "Disk Usage: 95%", nil }},
		{Name: "check_memory", Call: func(context.Context, string) (string, error) { return "Memory: 41%", nil }},
	}, toolwrap.Config{MaxParallel: 4})
	ctx := context.Background()
	resp, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o-mini",
		Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "How is the server?"}},
		Tools:    twopenai.ToolDefinitions(ex)})
	if err != nil {
		panic(err)
	}
	msgs, err := twopenai.ExecuteToolCalls(ctx, ex, resp.Choices[0].Message.ToolCalls)
	if err != nil {
		panic(err)
	}
	for _, m := range msgs {
		fmt.Println(m.Role, m.ToolCallID, m.Content)
	}
	// Output:
	// tool call_1 Disk Usage: 95%
	// tool call_2 Memory: 41%
}
