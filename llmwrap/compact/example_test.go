package compact_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/tokenwise/tokenwise/llmwrap/compact"
	"github.com/tokenwise/tokenwise/middleware"
)

func Example() {
	c, err := compact.New(compact.Config{
		MaxInputTokens: 3_000,
		KeepLastTurns:  2,
		BlockSize:      4,
		Strategies:     []compact.Strategy{compact.Drop},
	}, compact.WithEstimator(compact.Approx{}))
	if err != nil {
		panic(err)
	}
	mw := c.Middleware()
	provider := middleware.HandlerFunc(func(_ context.Context, req *middleware.Request) (*middleware.Response, error) {
		for _, m := range req.Messages {
			switch {
			case m.Role == middleware.RoleTool:
				fmt.Printf("%-9s %d bytes\n", m.Role, len(m.Content))
			case len(m.ToolCalls) > 0:
				fmt.Printf("%-9s calls %s\n", m.Role, m.ToolCalls[0].Name)
			default:
				fmt.Printf("%-9s %s\n", m.Role, m.Content)
			}
		}
		return &middleware.Response{Message: middleware.Message{Role: middleware.RoleAssistant, Content: "done"}}, nil
	})
	h := middleware.Then(provider, mw)

	msgs := []middleware.Message{
		{Role: middleware.RoleSystem, Content: "You are a DevOps agent."},
		{Role: middleware.RoleUser, Content: "Disk full on web-1: fix it."},
	}
	for i := range 6 {
		id := fmt.Sprintf("call_%d", i)
		msgs = append(msgs,
			middleware.Message{Role: middleware.RoleAssistant, ToolCalls: []middleware.ToolCall{{ID: id, Name: "read_log"}}},
			middleware.Message{Role: middleware.RoleTool, ToolCallID: id, Content: strings.Repeat("log line\n", 300)})
	}
	ctx, _ := middleware.StartRun(context.Background(), "example")
	_, err = h.Handle(ctx, &middleware.Request{Model: "gpt-4o-mini", Messages: msgs})
	fmt.Println("error:", err)
	// Output:
	// system    You are a DevOps agent.
	// user      Disk full on web-1: fix it.
	// user      [tokenwise: 4 earlier turns (8 messages) were dropped here to fit the context budget]
	// assistant calls read_log
	// tool      2700 bytes
	// assistant calls read_log
	// tool      2700 bytes
	// error: <nil>
}
