package langchaingo

import (
	"context"
	"strings"
	"sync"

	"github.com/tmc/langchaingo/agents"
	"github.com/tmc/langchaingo/chains"
	"github.com/tmc/langchaingo/schema"
	"github.com/tmc/langchaingo/tools"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/toolwrap"
)

// ParallelAgent decorates an agents.Agent so that the several actions it
// plans in one turn (the OpenAI functions agent's parallel tool calls) run
// concurrently through a toolwrap.Executor, without forking langchaingo:
// Plan asks the wrapped agent for its actions, executes them all with the
// executor (in parallel where they are independent, each with its
// timeout, errors as observations, large results as artifacts) and
// returns the actions unchanged; the tools returned by GetTools then hand
// langchaingo's sequential agents.Executor the results it asks for, one by
// one, in the original order with their tool ids, so the scratchpad is
// exactly what sequential execution would have produced.
//
// Use it as the Executor's agent:
//
//	ex, _ := toolwrap.New(langchaingo.FromTools(myTools, nil), toolwrap.Config{MaxParallel: 4})
//	agent := agents.NewOpenAIFunctionsAgent(llm, langchaingo.Tools(ex))
//	executor := agents.NewExecutor(langchaingo.NewParallelAgent(agent, ex))
//
// Results are kept per run (middleware.RunFrom), in the run itself
// (middleware.RunValue): a ParallelAgent is safe for concurrent use by
// executors running under different runs, and keeps nothing of a run that
// has ended (the results of a turn the executor did not take all of go
// with the run). Outside a run, concurrent executors need a ParallelAgent
// each; the results of its last turn are kept until its next Plan.
type ParallelAgent struct {
	agent agents.Agent
	ex    *toolwrap.Executor
	tools []tools.Tool

	mu      sync.Mutex // guards every turnResults of the agent
	outside turnResults
}

// turnResults are the results of the last turn planned, not yet taken.
type turnResults struct{ planned []planned }

// pendingKey keys an agent's turnResults in a run.
type pendingKey struct{ p *ParallelAgent }

type planned struct {
	name  string // upper case, as agents.Executor looks tools up
	input string
	res   toolwrap.Result
}

var _ agents.Agent = (*ParallelAgent)(nil)

// NewParallelAgent wraps agent; its actions run through ex.
func NewParallelAgent(agent agents.Agent, ex *toolwrap.Executor) *ParallelAgent {
	p := &ParallelAgent{agent: agent, ex: ex}
	for _, s := range ex.Tools() {
		p.tools = append(p.tools, &execTool{ex: ex, name: s.Name, desc: s.Description, agent: p})
	}
	return p
}

// Plan asks the wrapped agent what to do next and, when it plans actions,
// runs them all before returning them. The error is the wrapped agent's,
// or the executor's when ctx ended (or toolwrap.Config.FailOnError is set).
func (p *ParallelAgent) Plan(ctx context.Context, steps []schema.AgentStep, inputs map[string]string, options ...chains.ChainCallOption) ([]schema.AgentAction, *schema.AgentFinish, error) {
	actions, finish, err := p.agent.Plan(ctx, steps, inputs, options...)
	pending := p.pending(middleware.RunFrom(ctx))
	p.mu.Lock()
	pending.planned = nil // results of a previous turn nobody asked for
	p.mu.Unlock()
	if err != nil || len(actions) == 0 {
		return actions, finish, err
	}
	calls := make([]middleware.ToolCall, len(actions))
	for i, a := range actions {
		calls[i] = middleware.ToolCall{ID: a.ToolID, Name: p.toolName(a.Tool), Arguments: trimInput(a.ToolInput)}
	}
	res, xerr := p.ex.Execute(ctx, calls)
	if xerr != nil {
		return nil, nil, xerr
	}
	turn := make([]planned, len(res))
	for i, r := range res {
		turn[i] = planned{name: strings.ToUpper(calls[i].Name), input: calls[i].Arguments, res: r}
	}
	p.mu.Lock()
	pending.planned = turn
	p.mu.Unlock()
	return actions, finish, nil
}

// pending returns where the agent keeps the results of run's turns: in
// the run, or in the agent outside a run (run nil).
func (p *ParallelAgent) pending(run *middleware.Run) *turnResults {
	if run == nil {
		return &p.outside
	}
	return middleware.RunValue(run, pendingKey{p}, func() *turnResults { return new(turnResults) })
}

// toolName maps an action's tool to the executor's spelling (the agents
// Executor matches names case-insensitively).
func (p *ParallelAgent) toolName(name string) string {
	if _, ok := p.ex.Tool(name); ok {
		return name
	}
	for _, t := range p.tools {
		if strings.EqualFold(t.Name(), name) {
			return t.Name()
		}
	}
	return name
}

// trimInput removes what agents.Executor strips before calling a tool.
func trimInput(s string) string { return strings.TrimSuffix(s, "\nObservation:") }

// take returns and removes the first pending result of the run for name
// and input.
func (p *ParallelAgent) take(ctx context.Context, name, input string) (toolwrap.Result, bool) {
	pending := p.pending(middleware.RunFrom(ctx))
	up := strings.ToUpper(name)
	p.mu.Lock()
	defer p.mu.Unlock()
	turn := pending.planned
	for i, pl := range turn {
		if pl.name == up && pl.input == input {
			pending.planned = append(turn[:i:i], turn[i+1:]...)
			if len(pending.planned) == 0 {
				pending.planned = nil
			}
			return pl.res, true
		}
	}
	return toolwrap.Result{}, false
}

func (p *ParallelAgent) answer(r toolwrap.Result) (string, error) {
	return r.Content, nil
}

// GetInputKeys returns the wrapped agent's input keys.
func (p *ParallelAgent) GetInputKeys() []string { return p.agent.GetInputKeys() }

// GetOutputKeys returns the wrapped agent's output keys.
func (p *ParallelAgent) GetOutputKeys() []string { return p.agent.GetOutputKeys() }

// GetTools returns the executor's tools as langchaingo tools that answer
// with the results of the current turn.
func (p *ParallelAgent) GetTools() []tools.Tool { return p.tools }
