package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/policies"
	"github.com/tokenwise/tokenwise/toolwrap"
)

// tool is one of the agent's tools, usable from the langchaingo agent
// (tools.Tool) and from the go-openai loop.
type tool struct {
	name, description string
	run               func(ctx context.Context, input string) (string, error)
}

func (t tool) Name() string        { return t.name }
func (t tool) Description() string { return t.description }
func (t tool) Call(ctx context.Context, input string) (string, error) {
	return t.run(ctx, input)
}

func devopsTools() []tool {
	return []tool{
		{name: "check_disk", description: "Reports disk usage and the largest folders.",
			run: func(ctx context.Context, input string) (string, error) { return slow(ctx, checkLatency, diskReport) }},
		{name: "clean_logs", description: "Deletes rotated logs in a folder and reports the space freed.",
			run: func(ctx context.Context, input string) (string, error) { return cleanReport, nil }},
		{name: "check_memory", description: "Reports memory usage and the largest processes.",
			run: func(ctx context.Context, input string) (string, error) { return slow(ctx, checkLatency, memoryReport) }},
		{name: "read_logs", description: "Returns the system log of a host (large: read it back with read_artifact).",
			run: func(ctx context.Context, input string) (string, error) { return syslog(), nil }},
	}
}

// checkLatency is how long check_disk and check_memory take: independent
// and slow, the model asks for both in one turn and they run in parallel.
const checkLatency = 300 * time.Millisecond

// slow returns out after d, or ctx's error if it ends first.
func slow(ctx context.Context, d time.Duration, out string) (string, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return out, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// syslog is a 2 MB log with the cause of the trouble in the middle.
var syslog = sync.OnceValue(func() string {
	var b strings.Builder
	for i := 0; b.Len() < 2<<20; i++ {
		if i == 20000 {
			b.WriteString(logErrorLine + "\n")
			continue
		}
		fmt.Fprintf(&b, "Nov 26 08:%02d:%02d web-1 nginx[812]: GET /api/v1/status 200 %d\n", i/60%60, i%60, i)
	}
	return b.String()
})

// coreTools returns the tools with the metadata the executor needs; their
// single string argument is declared like langchaingo's functions agent does.
func coreTools() []toolwrap.Tool {
	meta := map[string]toolwrap.Meta{"clean_logs": {SideEffects: true}}
	var out []toolwrap.Tool
	for _, t := range devopsTools() {
		out = append(out, toolwrap.Tool{Name: t.name, Description: t.description, Meta: meta[t.name],
			Parameters: []byte(`{"type":"object","properties":{"__arg1":{"type":"string"}}}`), Call: t.run})
	}
	return out
}

// toolExecutor runs the tools as the policy says (parallelism, timeouts,
// errors as observations); when the policy configures no artifacts, results
// over 8 KiB go to an in-memory artifact store.
func (e *env) toolExecutor() (*toolwrap.Executor, error) {
	var opts []toolwrap.Option
	if e.policy.Tools.Artifacts == (policies.Artifacts{}) {
		opts = append(opts, toolwrap.WithArtifacts(toolwrap.NewArtifacts(toolwrap.NewMemoryStore(0),
			toolwrap.ArtifactConfig{ThresholdBytes: 8 << 10}, nil)))
	}
	return llmwrap.NewExecutor(e.policy, coreTools(), nil, opts...)
}
