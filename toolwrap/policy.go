package toolwrap

import (
	"errors"
	"fmt"

	"github.com/tokenwise/tokenwise/policies"
)

// PolicyOptions turns a policy's tools section into options: MaxParallel,
// the tool timeout (tools.timeout, else timeouts.tool), on_error, the
// result cache TTL, per_tool metadata and artifacts. An artifact store of
// kind memory or dir is built here; kind redis needs store (for example
// adapters/redis's artifact store), which, when non-nil, is used for any
// kind. Options given after these override them.
func PolicyOptions(p *policies.Policy, store Store) ([]Option, error) {
	if p == nil {
		return nil, nil
	}
	t := p.Tools
	opts := []Option{WithMaxParallel(t.MaxParallel), WithFailOnError(t.OnError == policies.ToolErrorFail)}
	d := t.Timeout.Duration()
	if d == 0 {
		d = p.Timeouts.Tool.Duration()
	}
	opts = append(opts, WithTimeout(d))
	if t.CacheTTL > 0 {
		opts = append(opts, WithCache(t.CacheTTL.Duration(), 0))
	}
	for name, s := range t.PerTool {
		opts = append(opts, WithMeta(name, Meta{SideEffects: s.SideEffects, Idempotent: s.Idempotent, Timeout: s.Timeout.Duration()}))
	}
	a := t.Artifacts
	if a.ThresholdBytes > 0 || a.ThresholdTokens > 0 {
		if store == nil {
			switch a.Store {
			case policies.StoreMemory, "":
				store = NewMemoryStore(int64(a.MaxBytes))
			case policies.StoreDir:
				ds, err := NewDirStore(a.Dir)
				if err != nil {
					return nil, fmt.Errorf("toolwrap: tools.artifacts: %w", err)
				}
				store = ds
			case policies.StoreRedis:
				return nil, errors.New("toolwrap: tools.artifacts.store is redis: pass a store (adapters/redis)")
			default:
				return nil, fmt.Errorf("toolwrap: tools.artifacts.store %q unknown", a.Store)
			}
		}
		cfg := ArtifactConfig{ThresholdBytes: int(a.ThresholdBytes), ThresholdTokens: a.ThresholdTokens,
			HeadLines: a.HeadLines, TailLines: a.TailLines}
		opts = append(opts, WithArtifacts(NewArtifacts(store, cfg, nil)))
	}
	return opts, nil
}

// FromPolicy returns an executor of tools configured by p's tools section
// (see PolicyOptions), then opts.
func FromPolicy(p *policies.Policy, tools []Tool, store Store, opts ...Option) (*Executor, error) {
	po, err := PolicyOptions(p, store)
	if err != nil {
		return nil, err
	}
	return New(tools, append(po, opts...)...)
}
