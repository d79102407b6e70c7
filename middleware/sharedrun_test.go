package middleware_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
)

// Runs opened on one key of a RunStore (one per replica) number their
// calls with one counter: concurrent calls on all of them get 1..n, each
// once; each Run takes the store's start; a run of this process keeps its
// own count; a store failure matches ErrRunStore.
func TestSharedRunNumbersCallsAcrossProcesses(t *testing.T) {
	t.Parallel()
	store := &middlewaretest.RunStore{IdleTime: time.Hour}
	first := time.Now().Add(-time.Minute)
	store.SetStart("team/r", first) // another replica saw the run first
	runs := []*middleware.Run{middleware.OpenSharedRun("r", "team/r", store), middleware.OpenSharedRun("r", "team/r", store)}
	if key, s := runs[0].Shared(); key != "team/r" || s != store {
		t.Fatalf("Shared() = %q, %v", key, s)
	}
	var mu sync.Mutex
	var seqs []int
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 25 {
				n, err := runs[i%2].NextSeqContext(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seqs = append(seqs, n)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(seqs)
	for i, n := range seqs {
		if n != i+1 {
			t.Fatalf("call numbers are not 1..200 each once: %v at %d", n, i)
		}
	}
	for _, r := range runs {
		if !r.Started().Equal(first) || r.Seq() > 200 || r.Seq() < 100 {
			t.Fatalf("run started %v (want the store's %v), seq %d", r.Started(), first, r.Seq())
		}
	}

	_, local := middleware.StartRun(context.Background(), "r")
	if n, err := local.NextSeqContext(context.Background()); n != 1 || err != nil {
		t.Fatalf("a run of this process: call %d, %v", n, err)
	}
	if key, s := local.Shared(); key != "" || s != nil {
		t.Fatalf("a run of this process is shared: %q", key)
	}

	cause := errors.New("connection refused")
	store.Fail(cause)
	if _, err := runs[0].NextSeqContext(context.Background()); !errors.Is(err, middleware.ErrRunStore) || !errors.Is(err, cause) {
		t.Fatalf("store failure: %v, want ErrRunStore wrapping the cause", err)
	}
}
