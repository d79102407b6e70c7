package langchaingo

import (
	"context"
	"strconv"
	"sync/atomic"

	"github.com/tmc/langchaingo/tools"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/toolwrap"
)

// FromTool returns the core tool of a langchaingo tool: same name and
// description, its Call given the input string the agent passes (for the
// OpenAI functions agent, the "__arg1" value or the raw JSON arguments),
// with meta (side effects, idempotent, timeout).
func FromTool(t tools.Tool, meta toolwrap.Meta) toolwrap.Tool {
	return toolwrap.Tool{Name: t.Name(), Description: t.Description(), Meta: meta, Call: t.Call}
}

// FromTools converts langchaingo tools; meta gives the metadata by tool
// name (nil: none).
func FromTools(ts []tools.Tool, meta map[string]toolwrap.Meta) []toolwrap.Tool {
	out := make([]toolwrap.Tool, len(ts))
	for i, t := range ts {
		out[i] = FromTool(t, meta[t.Name()])
	}
	return out
}

// Tools returns every tool of ex (read_artifact included when artifacts are
// on) as langchaingo tools of the same name and description whose Call
// runs through ex: its timeout, its result cache and its artifacts. A
// failure is returned as the observation with a nil error, so that
// langchaingo's agent Executor, which aborts the run on a tool error, goes
// on; with toolwrap.Config.FailOnError the error is returned instead.
//
// Hand these to the agent (agents.NewOpenAIFunctionsAgent) so that the
// model is offered read_artifact. Each call is a turn of its own; to run
// one turn's several actions in parallel, wrap the agent with
// NewParallelAgent. The tools are safe for concurrent use.
func Tools(ex *toolwrap.Executor) []tools.Tool {
	specs := ex.Tools()
	out := make([]tools.Tool, len(specs))
	for i, s := range specs {
		out[i] = &execTool{ex: ex, name: s.Name, desc: s.Description}
	}
	return out
}

// execTool is a langchaingo tool that runs through an executor, or takes
// its result from a ParallelAgent's turn.
type execTool struct {
	ex    *toolwrap.Executor
	name  string
	desc  string
	agent *ParallelAgent // nil outside a ParallelAgent
}

var _ tools.Tool = (*execTool)(nil)

func (t *execTool) Name() string        { return t.name }
func (t *execTool) Description() string { return t.desc }

var callSeq atomic.Uint64

// Call runs the tool, or returns the result a ParallelAgent already has.
func (t *execTool) Call(ctx context.Context, input string) (string, error) {
	if t.agent != nil {
		if r, ok := t.agent.take(ctx, t.name, input); ok {
			return t.agent.answer(r)
		}
	}
	id := "call_tw_" + strconv.FormatUint(callSeq.Add(1), 10)
	res, err := t.ex.Execute(ctx, []middleware.ToolCall{{ID: id, Name: t.name, Arguments: input}})
	if err != nil {
		return "", err
	}
	return res[0].Content, nil
}
