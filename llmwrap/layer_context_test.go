package llmwrap_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/compact"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

func TestContextLayerFromPolicy(t *testing.T) {
	p := policies.Default()
	p.Context = policies.ContextPolicy{MaxInputTokens: 3_000, KeepLastTurns: 2, BlockSize: 4,
		Strategies: []policies.ContextStrategy{policies.StrategyOffload, policies.StrategyDrop}}
	offloaded := 0
	off := compact.OffloaderFunc(func(_ context.Context, run, tool, content string) (string, error) {
		offloaded++
		return fmt.Sprintf("[%s: %d bytes stored as artifact a%d]", tool, len(content), offloaded), nil
	})
	chain := llmwrap.MustBuild(p, llmwrap.WithContextOffloader(off))
	var sent *middleware.Request
	h := chain(middleware.HandlerFunc(func(_ context.Context, req *middleware.Request) (*middleware.Response, error) {
		sent = req
		return &middleware.Response{Model: req.Model, Message: middleware.Message{Role: middleware.RoleAssistant, Content: "ok"}}, nil
	}))
	msgs := []middleware.Message{{Role: middleware.RoleSystem, Content: "sys"}, {Role: middleware.RoleUser, Content: "task"}}
	for i := range 8 {
		id := fmt.Sprintf("c%d", i)
		msgs = append(msgs, middleware.Message{Role: middleware.RoleAssistant, ToolCalls: []middleware.ToolCall{{ID: id, Name: "read_log"}}},
			middleware.Message{Role: middleware.RoleTool, ToolCallID: id, Content: strings.Repeat("x log line\n", 300)})
	}
	ctx, run := middleware.StartRun(context.Background(), "layer")
	if _, err := h.Handle(ctx, &middleware.Request{Model: "gpt-4o-mini", Messages: msgs}); err != nil {
		t.Fatal(err)
	}
	if offloaded == 0 || len(sent.Messages) != len(msgs) || !strings.Contains(sent.Messages[3].Content, "artifact a1") {
		t.Fatalf("offloaded %d; sent %d messages", offloaded, len(sent.Messages))
	}
	c := run.Calls()[0]
	if c.Saved.InputTokens <= 0 || c.SavedMicros <= 0 || len(c.Notes) == 0 {
		t.Fatalf("savings not recorded: %+v", c.CallFacts)
	}
}
