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

// TestOffloadedResultStaysReadableInALongRun: a tool result the context
// layer offloaded to the run's default store (no WithArtifacts) stays
// readable with read_artifact for as long as its excerpt is sent in the
// conversation, also once the run has offloaded more than
// toolwrap.RunStoreBytes: the run's store keeps its artifacts for the
// run's life (before, an LRU evicted the oldest while its excerpt was
// still sent). A result past the store's hard bound is cut to an excerpt
// that names no artifact and says it is not kept: every artifact id the
// conversation names can be read.
func TestOffloadedResultStaysReadableInALongRun(t *testing.T) {
	p := policies.Default()
	p.Budget = policies.Budget{} // no request limit: the conversation is long on purpose
	p.Context = policies.ContextPolicy{MaxInputTokens: 400_000, KeepLastTurns: 1, BlockSize: 1,
		Strategies: []policies.ContextStrategy{policies.StrategyOffload}}
	chain := llmwrap.MustBuild(p, llmwrap.WithContextOptions(compact.WithEstimator(compact.Approx{})))
	var sent *middleware.Request
	h := chain(middleware.HandlerFunc(func(_ context.Context, req *middleware.Request) (*middleware.Response, error) {
		sent = req
		return &middleware.Response{Model: req.Model, Message: middleware.Message{Role: middleware.RoleAssistant, Content: "ok"}}, nil
	}))
	msgs := []middleware.Message{{Role: middleware.RoleSystem, Content: "sys"}, {Role: middleware.RoleUser, Content: "task"}}
	line := strings.Repeat("x", 100)
	for i := range toolwrap.RunStoreBytes>>20 + 4 { // 1 MiB results, past the bound
		var b strings.Builder
		for l := 0; b.Len() < 1<<20; l++ {
			fmt.Fprintf(&b, "call %d line %d %s\n", i, l, line)
		}
		id := fmt.Sprintf("c%d", i)
		msgs = append(msgs, middleware.Message{Role: middleware.RoleAssistant, ToolCalls: []middleware.ToolCall{{ID: id, Name: "read_log"}}},
			middleware.Message{Role: middleware.RoleTool, ToolCallID: id, Content: b.String()})
	}
	ctx, _ := middleware.StartRun(context.Background(), "long")
	if _, err := h.Handle(ctx, &middleware.Request{Model: "gpt-4o-mini", Messages: msgs}); err != nil {
		t.Fatal(err)
	}
	excerpt := sent.Messages[3].Content
	i := strings.Index(excerpt, toolwrap.IDPrefix)
	if i < 0 {
		t.Fatalf("first tool result not offloaded: %.200q", excerpt)
	}
	id := excerpt[i : i+len(toolwrap.IDPrefix)+26]
	if _, err := toolwrap.RunArtifacts(ctx).Read(ctx, toolwrap.ReadArgs{ID: id, Limit: 1}); err != nil {
		t.Errorf("the first offloaded result, whose excerpt is still sent, cannot be read back: %v", err)
	}
	unkept := 0
	for i, m := range sent.Messages {
		if m.Role != middleware.RoleTool {
			continue
		}
		if j := strings.Index(m.Content, toolwrap.IDPrefix); j >= 0 {
			id := m.Content[j : j+len(toolwrap.IDPrefix)+26]
			if _, err := toolwrap.RunArtifacts(ctx).Read(ctx, toolwrap.ReadArgs{ID: id, Limit: 1}); err != nil {
				t.Errorf("message %d names artifact %s, which cannot be read: %v", i, id, err)
			}
		} else if strings.Contains(m.Content, "not kept") {
			unkept++
		}
	}
	if unkept == 0 {
		t.Error("no result past the run store's bound was cut to an excerpt that says it is not kept")
	}
}

// TestOffloadedToTheExecutorsStoreStaysReadable: the same long run, its
// old results offloaded by the context layer to the executor's store
// (llmwrap.WithArtifacts(ex.Artifacts()), a policy's tools.artifacts
// memory store of 4 MiB): every artifact an excerpt names stays readable,
// and a result that does not fit beside them is cut to an excerpt that
// says it is not kept. Before, the store evicted the run's first
// artifacts while their excerpts were still sent.
func TestOffloadedToTheExecutorsStoreStaysReadable(t *testing.T) {
	p := policies.Default()
	p.Budget = policies.Budget{}
	p.Context = policies.ContextPolicy{MaxInputTokens: 400_000, KeepLastTurns: 1, BlockSize: 1,
		Strategies: []policies.ContextStrategy{policies.StrategyOffload}}
	p.Tools.Artifacts = policies.Artifacts{ThresholdBytes: 16 << 10, MaxBytes: 4 << 20}
	ex, err := llmwrap.NewExecutor(p, []toolwrap.Tool{{Name: "read_log", Call: func(context.Context, string) (string, error) { return "", nil }}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	chain := llmwrap.MustBuild(p, llmwrap.WithArtifacts(ex.Artifacts()), llmwrap.WithContextOptions(compact.WithEstimator(compact.Approx{})))
	var sent *middleware.Request
	h := chain(middleware.HandlerFunc(func(_ context.Context, req *middleware.Request) (*middleware.Response, error) {
		sent = req
		return &middleware.Response{Model: req.Model, Message: middleware.Message{Role: middleware.RoleAssistant, Content: "ok"}}, nil
	}))
	msgs := []middleware.Message{{Role: middleware.RoleSystem, Content: "sys"}, {Role: middleware.RoleUser, Content: "task"}}
	line := strings.Repeat("x", 100)
	for i := range 8 { // 1 MiB results, past the store's 4 MiB
		var b strings.Builder
		for l := 0; b.Len() < 1<<20; l++ {
			fmt.Fprintf(&b, "call %d line %d %s\n", i, l, line)
		}
		id := fmt.Sprintf("c%d", i)
		msgs = append(msgs, middleware.Message{Role: middleware.RoleAssistant, ToolCalls: []middleware.ToolCall{{ID: id, Name: "read_log"}}},
			middleware.Message{Role: middleware.RoleTool, ToolCallID: id, Content: b.String()})
	}
	ctx, _ := middleware.StartRun(context.Background(), "long")
	if _, err := h.Handle(ctx, &middleware.Request{Model: "gpt-4o-mini", Messages: msgs}); err != nil {
		t.Fatal(err)
	}
	named, unkept := 0, 0
	for i, m := range sent.Messages {
		if m.Role != middleware.RoleTool {
			continue
		}
		if j := strings.Index(m.Content, toolwrap.IDPrefix); j >= 0 {
			named++
			id := m.Content[j : j+len(toolwrap.IDPrefix)+26]
			res, err := ex.Execute(ctx, []middleware.ToolCall{{ID: "r", Name: toolwrap.ReadArtifactName, Arguments: fmt.Sprintf(`{"id":%q,"limit":1}`, id)}})
			if err != nil || res[0].Err != nil {
				t.Errorf("message %d names artifact %s, which read_artifact cannot read: %q (%v)", i, id, res[0].Content, err)
			}
		} else if strings.Contains(m.Content, "not kept") {
			unkept++
		}
	}
	if named == 0 || unkept == 0 {
		t.Errorf("%d results offloaded, %d cut as not kept; want both", named, unkept)
	}
}
