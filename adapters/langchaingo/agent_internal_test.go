package langchaingo

import (
	"context"
	"runtime"
	"testing"
	"weak"

	"github.com/tmc/langchaingo/agents"
	"github.com/tmc/langchaingo/chains"
	"github.com/tmc/langchaingo/schema"
	"github.com/tmc/langchaingo/tools"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/toolwrap"
)

// planAgent plans, every turn, a call of a tool the executor does not know
// and one of "echo".
type planAgent struct{}

func (planAgent) Plan(context.Context, []schema.AgentStep, map[string]string, ...chains.ChainCallOption) ([]schema.AgentAction, *schema.AgentFinish, error) {
	return []schema.AgentAction{{Tool: "nope", ToolInput: "x", ToolID: "a"}, {Tool: "echo", ToolInput: "y", ToolID: "b"}}, nil, nil
}
func (planAgent) GetInputKeys() []string  { return []string{"input"} }
func (planAgent) GetOutputKeys() []string { return []string{"output"} }
func (planAgent) GetTools() []tools.Tool  { return nil }

// The results a ParallelAgent keeps for a run go with the run: a run
// whose last turn leaves one untaken (a tool the agents.Executor does not
// know, which it answers itself; its max iterations reached; a tool error
// that aborts it) is kept by nothing of the agent once it has ended, and
// an agent serving many runs does not grow.
func TestParallelAgentForgetsEndedRuns(t *testing.T) {
	ex, err := toolwrap.New([]toolwrap.Tool{{Name: "echo", Call: func(_ context.Context, s string) (string, error) { return s, nil }}}, toolwrap.Config{MaxParallel: 2})
	if err != nil {
		t.Fatal(err)
	}
	p := NewParallelAgent(planAgent{}, ex)
	runs := runEnded(p, 100)
	runtime.GC()
	runtime.GC()
	n := 0
	for _, r := range runs {
		if r.Value() != nil {
			n++
		}
	}
	runtime.KeepAlive(p) // the agent lives on: it must not keep them
	p.mu.Lock()
	outside := len(p.outside.planned)
	p.mu.Unlock()
	if n != 0 || outside != 0 {
		t.Fatalf("after 100 runs ended, the agent still holds the results of %d runs (and %d results outside a run)", n, outside)
	}

	// Within a run, what the executor did not take stays with the run,
	// and the next turn's Plan drops it.
	ctx, run := middleware.StartRun(context.Background(), "run")
	_, _ = agents.NewExecutor(p, agents.WithMaxIterations(1)).Call(ctx, map[string]any{"input": "hi"})
	if got := p.pending(run); len(got.planned) != 1 || got.planned[0].name != "NOPE" {
		t.Fatalf("the run keeps %+v; want the unknown tool's result", got.planned)
	}
	if _, _, err := p.Plan(ctx, nil, map[string]string{"input": "hi"}); err != nil {
		t.Fatal(err)
	}
	if got := p.pending(run); len(got.planned) != 2 {
		t.Fatalf("after the next Plan the run keeps %d results; want that turn's 2", len(got.planned))
	}
}

// runEnded runs n agents.Executor calls of p, each in a run of its own
// that ends with an untaken result, and returns weak pointers to the runs.
func runEnded(p *ParallelAgent, n int) []weak.Pointer[middleware.Run] {
	var runs []weak.Pointer[middleware.Run]
	for range n {
		ctx, run := middleware.StartRun(context.Background(), "run")
		runs = append(runs, weak.Make(run))
		_, _ = agents.NewExecutor(p, agents.WithMaxIterations(1)).Call(ctx, map[string]any{"input": "hi"})
	}
	return runs
}
