package toolwrap

import (
	"context"
	"errors"
	"sync"

	"github.com/tokenwise/tokenwise/middleware"
)

// RunStoreBytes bounds the in-memory store RunArtifacts keeps per run:
// its hard bound. A run's store evicts nothing (an excerpt the
// conversation still carries names its artifact for the run's life); an
// artifact that would take it past the bound is refused (ErrStoreFull).
const RunStoreBytes = 16 << 20

type runArtifactsKey struct{}

// orphans is RunArtifacts' store for calls outside a run, bounded like a
// run's; it lives as long as the process, so it evicts the least recently
// used artifacts to make room.
var orphans = sync.OnceValue(func() *Artifacts {
	return NewArtifacts(NewMemoryStore(RunStoreBytes), ArtifactConfig{}, nil)
})

// RunArtifacts returns the artifacts of the run of ctx kept in an
// in-memory store that lives as long as the run and keeps every artifact
// for that long, up to RunStoreBytes: past it, putting one fails with
// ErrStoreFull (nothing already kept is evicted). It is where context
// compaction offloads old tool results when no artifact store was given
// in code (llmwrap.WithArtifacts), so that the offload strategy is never a
// silent no-op; read_artifact looks there when its own store does not
// hold an id. Outside a run, one process-wide store of the same bound is
// used, which evicts the least recently used artifacts instead.
func RunArtifacts(ctx context.Context) *Artifacts {
	run := middleware.RunFrom(ctx)
	if run == nil {
		return orphans()
	}
	return middleware.RunValue(run, runArtifactsKey{}, func() *Artifacts {
		return NewArtifacts(newKeepingMemoryStore(RunStoreBytes), ArtifactConfig{}, nil)
	})
}

// Unkept renders what the conversation gets for a result s that could not
// be stored: an excerpt (its head and tail lines) that names no artifact
// and says why (note), so that no excerpt points at an artifact that
// read_artifact cannot read.
func (a *Artifacts) Unkept(s, note string) string {
	return a.excerpt("", NewText([]byte(s)), note)
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
