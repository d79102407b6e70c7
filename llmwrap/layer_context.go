package llmwrap

import (
	"context"
	"errors"
	"slices"

	"github.com/tokenwise/tokenwise/llmwrap/compact"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
	"github.com/tokenwise/tokenwise/toolwrap"
)

// WithContextOffloader sets the artifact store the context layer's offload
// strategy moves old tool results to (the tools package's artifact store,
// whose read_artifact tool lets the agent read them back). Without it the
// offload strategy uses toolwrap.RunArtifacts: an in-memory store per run,
// which read_artifact also reads, and which keeps every artifact for the
// run's life up to toolwrap.RunStoreBytes; past it, a result is replaced
// by an excerpt that names no artifact and says the full result is not
// kept (a middleware.StoreFailed event).
func WithContextOffloader(off compact.Offloader) Option {
	return func(o *options) { o.contextOpts = append(o.contextOpts, compact.WithOffloader(off)) }
}

// WithArtifacts makes the context layer's offload strategy store old tool
// results in arts, the same artifact store the agent's tool executor uses
// (llmwrap.NewExecutor / toolwrap.WithArtifacts), so that the agent reads
// them back with read_artifact: offloading loses nothing. A store that
// keeps what it holds and is full (toolwrap.ErrStoreFull: a MemoryStore
// keeps the artifacts of runs in progress) gets no more: the result is
// cut to an excerpt that names no artifact and says the full result is not
// kept (a middleware.StoreFailed event), as with the run's store.
func WithArtifacts(arts *toolwrap.Artifacts) Option {
	return WithContextOffloader(compact.OffloaderFunc(func(ctx context.Context, _, _ string, content string) (string, error) {
		return offloadOrCut(ctx, arts, content, "the full result is not kept: the artifact store is full")
	}))
}

// offloadOrCut offloads content to arts; if arts is full of what it keeps
// (toolwrap.ErrStoreFull), content is cut to an excerpt that names no
// artifact and says why (note), rather than left whole (over the
// ceiling) or offloaded past what the store can keep.
func offloadOrCut(ctx context.Context, arts *toolwrap.Artifacts, content, note string) (string, error) {
	excerpt, _, _, err := arts.Offload(ctx, content)
	if errors.Is(err, toolwrap.ErrStoreFull) {
		middleware.Emit(ctx, middleware.StoreFailed{Store: "artifacts", Op: "offload", Err: err})
		return arts.Unkept(content, note), nil
	}
	return excerpt, err
}

// WithContextOptions passes code-side options to the context layer (an
// estimator, a summariser handler, the summary cache size).
func WithContextOptions(opts ...compact.Option) Option {
	return func(o *options) { o.contextOpts = append(o.contextOpts, opts...) }
}

// contextLayer builds the context compaction layer from p.Context: off
// unless a ceiling (max_input_tokens or window_fraction) is set. It sits
// under the router, so the ceiling is the routed model's, and above the
// fallback and the budget, so that summary calls go through them (billed,
// retried) and every attempt is sent the compacted request.
func contextLayer(p *policies.Policy, o *options) (middleware.Middleware, error) {
	if x := p.Context; x.MaxInputTokens <= 0 && x.WindowFraction <= 0 {
		return nil, nil
	}
	cfg := compactConfig(p)
	opts := []compact.Option{
		compact.WithEstimator(o.estimator()),
		compact.WithPricer(o.catalog),
		compact.WithWindow(func(model string) int64 {
			spec, _ := p.Model(model)
			return spec.ContextWindow
		}),
	}
	if slices.Contains(cfg.Strategies, compact.Offload) {
		// The default, overridden by WithArtifacts / WithContextOffloader
		// below (the last WithOffloader wins).
		opts = append(opts, compact.WithOffloader(compact.OffloaderFunc(func(ctx context.Context, _, _ string, content string) (string, error) {
			return offloadOrCut(ctx, toolwrap.RunArtifacts(ctx), content, "the full result is not kept: this run's artifact store is full")
		})))
	}
	opts = append(opts, o.contextOpts...)
	c, err := compact.New(cfg, opts...)
	if err != nil {
		return nil, err
	}
	return c.Middleware(), nil
}
