package toolwrap_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/toolwrap"
)

// TestSharedStoreKeepsTheArtifactsOfRunsInProgress: an executor's
// MemoryStore (a policy's tools.artifacts) is shared by every run the
// executor serves. An artifact whose run is still in progress is never
// evicted for another run's results: its excerpt is in that run's
// conversation, and read_artifact must read it. A result that does not fit
// beside the artifacts of runs in progress is cut to an excerpt that names
// no artifact (the store refuses it: ErrStoreFull). Once a run has ended
// (its *Run is gone), its artifacts make room again. Before, run B's
// results evicted run A's artifact, and A's read said "no longer kept".
func TestSharedStoreKeepsTheArtifactsOfRunsInProgress(t *testing.T) {
	t.Parallel()
	const size = 8 << 10
	result := func(tag string) string {
		var b strings.Builder
		for i := 0; b.Len() < size; i++ {
			fmt.Fprintf(&b, "%s line %04d %s\n", tag, i, strings.Repeat("x", 60))
		}
		return b.String()
	}
	store := toolwrap.NewMemoryStore(3*size + size/2) // three results and a half
	arts := toolwrap.NewArtifacts(store, toolwrap.ArtifactConfig{ThresholdBytes: 1024}, nil)
	ex, err := toolwrap.New([]toolwrap.Tool{{Name: "read_log", Call: func(_ context.Context, args string) (string, error) {
		return result(args), nil
	}}}, toolwrap.Config{}, toolwrap.WithArtifacts(arts))
	if err != nil {
		t.Fatal(err)
	}
	call := func(ctx context.Context, tag string) toolwrap.Result {
		t.Helper()
		res, err := ex.Execute(ctx, []middleware.ToolCall{{ID: "c", Name: "read_log", Arguments: tag}})
		if err != nil {
			t.Fatal(err)
		}
		return res[0]
	}
	read := func(ctx context.Context, id string) toolwrap.Result {
		t.Helper()
		return readArtifact(t, ex, ctx, fmt.Sprintf(`{"id":%q,"offset":3,"limit":1}`, id))
	}

	ctxA, _ := middleware.StartRun(t.Context(), "run-A")
	a := call(ctxA, "A")
	if a.Artifact == "" {
		t.Fatalf("run A's result not offloaded: %.200q", a.Content)
	}
	ctxB, _ := middleware.StartRun(t.Context(), "run-B")
	var b []toolwrap.Result
	for i := range 4 {
		b = append(b, call(ctxB, fmt.Sprintf("B%d", i)))
	}
	if got := read(ctxA, a.Artifact); got.Err != nil || !strings.Contains(got.Content, "A line 0003") {
		t.Errorf("run A's artifact, whose excerpt run A still carries, after run B's results: %q (%v)", got.Content, got.Err)
	}
	stored := 0
	for i, r := range b {
		if r.Artifact == "" {
			if strings.Contains(r.Content, toolwrap.IDPrefix) || !strings.Contains(r.Content, "could not be stored") {
				t.Errorf("run B's result %d, not kept: %.300q; want an excerpt that names no artifact and says so", i, r.Content)
			}
			continue
		}
		stored++
		if got := read(ctxB, r.Artifact); got.Err != nil || !strings.Contains(got.Content, fmt.Sprintf("B%d line 0003", i)) {
			t.Errorf("run B's artifact %d: %q (%v)", i, got.Content, got.Err)
		}
	}
	if stored != 2 {
		t.Errorf("run B kept %d artifacts beside run A's, want the 2 that fit", stored)
	}

	// Run B ends: its artifacts make room for run C's.
	ctxB, b = nil, nil
	runtime.GC()
	ctxC, _ := middleware.StartRun(t.Context(), "run-C")
	for i := range 2 {
		c := call(ctxC, fmt.Sprintf("C%d", i))
		if c.Artifact == "" {
			t.Fatalf("run C's result %d not kept once run B ended: %.200q", i, c.Content)
		}
	}
	if got := read(ctxA, a.Artifact); got.Err != nil {
		t.Errorf("run A's artifact after run C's results: %q (%v)", got.Content, got.Err)
	}
	_, _ = ctxB, b
}

// TestSharedStoreRefusesWithoutEvictingAnything: a put that cannot fit
// beside the artifacts of runs in progress is refused (ErrStoreFull,
// which is ErrTooLarge too) without evicting what it could: the artifacts
// of ended runs and those put outside any run stay until a put fits.
func TestSharedStoreRefusesWithoutEvictingAnything(t *testing.T) {
	t.Parallel()
	s := toolwrap.NewMemoryStore(300)
	text := func(n int) *toolwrap.Text { return toolwrap.NewText([]byte(strings.Repeat("x", n))) }
	ctx, _ := middleware.StartRun(t.Context(), "r")
	if err := s.Put(t.Context(), "", "loose", text(100)); err != nil { // outside a run: evictable
		t.Fatal(err)
	}
	if err := s.Put(ctx, "r", "kept", text(150)); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "r", "big", text(200)); !errors.Is(err, toolwrap.ErrStoreFull) || !errors.Is(err, toolwrap.ErrTooLarge) {
		t.Fatalf("a put past the room of runs in progress: %v, want ErrStoreFull", err)
	}
	if _, err := s.Get(t.Context(), "", "loose"); err != nil {
		t.Errorf("a refused put evicted an artifact: %v", err)
	}
	if err := s.Put(ctx, "r", "small", text(100)); err != nil {
		t.Fatalf("a put that fits once the loose artifact goes: %v", err)
	}
	if _, err := s.Get(t.Context(), "", "loose"); !errors.Is(err, toolwrap.ErrEvicted) {
		t.Errorf("the loose artifact: %v, want it evicted", err)
	}
	for _, id := range []string{"kept", "small"} {
		if _, err := s.Get(ctx, "r", id); err != nil {
			t.Errorf("%s: %v", id, err)
		}
	}
}
