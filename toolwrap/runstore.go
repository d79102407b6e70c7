package toolwrap

import (
	"context"
	"errors"
	"sync"

	"github.com/tokenwise/tokenwise/middleware"
)

// RunStoreBytes bounds the in-memory store RunArtifacts keeps per run.
const RunStoreBytes = 16 << 20

type runArtifactsKey struct{}

// orphans is RunArtifacts' store for calls outside a run, bounded like a
// run's.
var orphans = sync.OnceValue(func() *Artifacts {
	return NewArtifacts(NewMemoryStore(RunStoreBytes), ArtifactConfig{}, nil)
})

// RunArtifacts returns the artifacts of the run of ctx kept in a bounded
// in-memory store (RunStoreBytes, least recently used evicted first) that
// lives as long as the run. It is where context compaction offloads old
// tool results when no artifact store was given in code
// (llmwrap.WithArtifacts), so that the offload strategy is never a silent
// no-op; read_artifact looks there when its own store does not hold an id.
// Outside a run, one process-wide store of the same bound is used.
func RunArtifacts(ctx context.Context) *Artifacts {
	run := middleware.RunFrom(ctx)
	if run == nil {
		return orphans()
	}
	return middleware.RunValue(run, runArtifactsKey{}, func() *Artifacts {
		return NewArtifacts(NewMemoryStore(RunStoreBytes), ArtifactConfig{}, nil)
	})
}

// getOrRun reads id from a, else from the run's RunArtifacts.
func (a *Artifacts) getOrRun(ctx context.Context, id string) (*Text, error) {
	t, err := a.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		if ra := RunArtifacts(ctx); ra != a {
			t2, err2 := ra.Get(ctx, id)
			if errors.Is(err2, ErrNotFound) && errors.Is(err, ErrEvicted) {
				return nil, err // (evicted from the first: say so)
			}
			return t2, err2
		}
	}
	return t, err
}
