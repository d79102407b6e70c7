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
	"github.com/tokenwise/tokenwise/toolwrap"
)

func TestContextLayerFromPolicy(t *testing.T) {
	t.Parallel()
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
	if c.Saved.InputTokens <= 0 || c.SavedPico <= 0 || len(c.Notes) == 0 {
		t.Fatalf("savings not recorded: %+v", c.CallFacts)
	}
}

// With the tools' artifact store, the offload strategy is lossless: the
// compacted request names an artifact the same run reads back in full.
func TestContextOffloadToToolArtifacts(t *testing.T) {
	t.Parallel()
	p := policies.Default()
	p.Context = policies.ContextPolicy{MaxInputTokens: 8_000, KeepLastTurns: 2, BlockSize: 4,
		Strategies: []policies.ContextStrategy{policies.StrategyOffload}}
	arts := toolwrap.NewArtifacts(toolwrap.NewMemoryStore(64<<20), toolwrap.ArtifactConfig{HeadLines: 2, TailLines: 1}, nil)
	chain := llmwrap.MustBuild(p, llmwrap.WithArtifacts(arts))
	var sent *middleware.Request
	h := chain(middleware.HandlerFunc(func(_ context.Context, req *middleware.Request) (*middleware.Response, error) {
		sent = req
		return &middleware.Response{Model: req.Model, Message: middleware.Message{Role: middleware.RoleAssistant, Content: "ok"}}, nil
	}))
	logText := func(i int) string {
		var b strings.Builder
		for l := range 300 {
			fmt.Fprintf(&b, "call %d log line %d\n", i, l)
		}
		return b.String()
	}
	msgs := []middleware.Message{{Role: middleware.RoleSystem, Content: "sys"}, {Role: middleware.RoleUser, Content: "task"}}
	for i := range 8 {
		id := fmt.Sprintf("c%d", i)
		msgs = append(msgs, middleware.Message{Role: middleware.RoleAssistant, ToolCalls: []middleware.ToolCall{{ID: id, Name: "read_log"}}},
			middleware.Message{Role: middleware.RoleTool, ToolCallID: id, Content: logText(i)})
	}
	ctx, _ := middleware.StartRun(context.Background(), "offload")
	if _, err := h.Handle(ctx, &middleware.Request{Model: "gpt-4o-mini", Messages: msgs}); err != nil {
		t.Fatal(err)
	}
	excerpt := sent.Messages[3].Content
	i := strings.Index(excerpt, toolwrap.IDPrefix)
	if i < 0 || len(excerpt) >= len(msgs[3].Content) {
		t.Fatalf("first tool result not offloaded: %.200q", excerpt)
	}
	id := excerpt[i : i+len(toolwrap.IDPrefix)+26]
	lines, total, err := arts.ReadRange(ctx, id, 150, 2)
	if err != nil || total != 300 || len(lines) != 2 || lines[0] != "call 0 log line 150" {
		t.Fatalf("read back %q of %d: %v", lines, total, err)
	}
	other, _ := middleware.StartRun(context.Background(), "other")
	if _, _, err := arts.ReadRange(other, id, 0, 1); err == nil {
		t.Fatal("another run read the artifact")
	}
}

// offload without an artifact store given in code is not a silent no-op:
// old tool results go to a bounded in-memory store of the run
// (toolwrap.RunArtifacts), and the agent's read_artifact tool — from an
// executor with its own, different store — reads them back in the same
// run, and only there.
func TestOffloadWithoutAStore(t *testing.T) {
	t.Parallel()
	p := policies.Default()
	p.Context = policies.ContextPolicy{MaxInputTokens: 8_000, KeepLastTurns: 2, BlockSize: 4,
		Strategies: []policies.ContextStrategy{policies.StrategyOffload}}
	chain := llmwrap.MustBuild(p) // no WithArtifacts
	var sent *middleware.Request
	h := chain(middleware.HandlerFunc(func(_ context.Context, req *middleware.Request) (*middleware.Response, error) {
		sent = req
		return &middleware.Response{Model: req.Model, Message: middleware.Message{Role: middleware.RoleAssistant, Content: "ok"}}, nil
	}))
	msgs := []middleware.Message{{Role: middleware.RoleSystem, Content: "sys"}, {Role: middleware.RoleUser, Content: "task"}}
	for i := range 8 {
		var b strings.Builder
		for l := range 300 {
			fmt.Fprintf(&b, "call %d log line %d\n", i, l)
		}
		id := fmt.Sprintf("c%d", i)
		msgs = append(msgs, middleware.Message{Role: middleware.RoleAssistant, ToolCalls: []middleware.ToolCall{{ID: id, Name: "read_log"}}},
			middleware.Message{Role: middleware.RoleTool, ToolCallID: id, Content: b.String()})
	}
	ctx, run := middleware.StartRun(context.Background(), "offload-default")
	if _, err := h.Handle(ctx, &middleware.Request{Model: "gpt-4o-mini", Messages: msgs}); err != nil {
		t.Fatal(err)
	}
	excerpt := sent.Messages[3].Content
	i := strings.Index(excerpt, toolwrap.IDPrefix)
	if i < 0 || len(excerpt) >= len(msgs[3].Content) {
		t.Fatalf("first tool result not offloaded: %.200q", excerpt)
	}
	if c := run.Calls()[0]; c.Saved.InputTokens <= 0 {
		t.Errorf("no savings recorded: %+v", c.CallFacts)
	}
	id := excerpt[i : i+len(toolwrap.IDPrefix)+26]
	// The agent's executor has its own store; read_artifact still finds it.
	ex, err := llmwrap.NewExecutor(p, nil, nil, toolwrap.WithArtifacts(toolwrap.NewArtifacts(toolwrap.NewMemoryStore(1<<20), toolwrap.ArtifactConfig{}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	read := func(ctx context.Context) (string, error) {
		return ex.Artifacts().Read(ctx, toolwrap.ReadArgs{ID: id, Offset: 150, Limit: 1})
	}
	if out, err := read(ctx); err != nil || !strings.Contains(out, "call 0 log line 150") {
		t.Fatalf("read_artifact in the run: %q, %v", out, err)
	}
	other, _ := middleware.StartRun(context.Background(), "other")
	if _, err := read(other); err == nil {
		t.Fatal("another run read the artifact")
	}
	// Bounded: the run's store never holds more than toolwrap.RunStoreBytes.
	if got := toolwrap.RunArtifacts(ctx).Store().(*toolwrap.MemoryStore).Size(); got <= 0 || got > toolwrap.RunStoreBytes {
		t.Errorf("run store holds %d bytes", got)
	}
}
