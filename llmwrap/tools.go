package llmwrap

import (
	"errors"
	"fmt"
	"slices"

	"github.com/tokenwise/tokenwise/policies"
	"github.com/tokenwise/tokenwise/toolwrap"
)

// NewExecutor returns an executor of tools configured by p's tools
// section: max_parallel, the tool timeout (tools.timeout, else
// timeouts.tool), on_error, the result cache TTL, per_tool metadata and
// artifacts (and the read_artifact tool also when only the context
// layer offloads, context.strategies: [offload], so that the model reads
// back what it was told to); and by the run's deadline (limits.run_timeout,
// budget.run.max_wall_time), which ends a run's tool calls as it ends its
// LLM calls. An artifact store of kind memory or dir is built here; kind
// redis needs store (for example adapters/redis's artifact store), which,
// when non-nil, is used for any kind. opts come after the policy's (a
// toolwrap.WithArtifacts of yours replaces the policy's artifacts).
func NewExecutor(p *policies.Policy, tools []toolwrap.Tool, store toolwrap.Store, opts ...toolwrap.Option) (*toolwrap.Executor, error) {
	if p == nil {
		p = policies.Default()
	}
	var base []toolwrap.Option
	a := p.Tools.Artifacts
	if a.ThresholdBytes > 0 || a.ThresholdTokens > 0 {
		if store == nil {
			switch a.Store {
			case policies.StoreMemory, "":
				store = toolwrap.NewMemoryStore(int64(a.MaxBytes))
			case policies.StoreDir:
				ds, err := toolwrap.NewDirStore(a.Dir)
				if err != nil {
					return nil, fmt.Errorf("tokenwise/llmwrap: tools.artifacts: %w", err)
				}
				store = ds
			case policies.StoreRedis:
				return nil, errors.New("tokenwise/llmwrap: tools.artifacts.store is redis: pass a store (adapters/redis)")
			default:
				return nil, fmt.Errorf("tokenwise/llmwrap: tools.artifacts.store %q unknown", a.Store)
			}
		}
		base = append(base, toolwrap.WithArtifacts(toolwrap.NewArtifacts(store, artifactConfig(p), nil)))
	} else if slices.Contains(p.Context.Strategies, policies.StrategyOffload) {
		// The context layer offloads old tool results and tells the model
		// to read them back with read_artifact: the executor offers it
		// (reading the run's artifacts, toolwrap.RunArtifacts, or store's),
		// and offloads nothing itself.
		if store == nil {
			store = toolwrap.NewMemoryStore(0)
		}
		base = append(base, toolwrap.WithArtifacts(toolwrap.NewArtifacts(store, artifactConfig(p), nil)))
	}
	return toolwrap.New(tools, toolsConfig(p), append(base, opts...)...)
}
