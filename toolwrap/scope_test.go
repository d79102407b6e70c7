package toolwrap_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/toolwrap"
)

// countingStore records the run scopes it is asked to put into.
type countingStore struct {
	toolwrap.Store
	mu   sync.Mutex
	runs []string
}

func (s *countingStore) Put(ctx context.Context, run, id string, t *toolwrap.Text) error {
	s.mu.Lock()
	s.runs = append(s.runs, run)
	s.mu.Unlock()
	return s.Store.Put(ctx, run, id, t)
}

// TestCallsOutsideARunShareNoArtifacts: every call outside a run is its
// own scope. Two run-less calls never meet in one scope: a large result is
// not stored (no later call could read it) and the call keeps a bounded
// excerpt without an id; a run-less read finds nothing, not even an
// artifact of a run; Put outside a run is ErrNoRun.
func TestCallsOutsideARunShareNoArtifacts(t *testing.T) {
	t.Parallel()
	log, _ := bigLog(1 << 20)
	store := &countingStore{Store: toolwrap.NewMemoryStore(0)}
	ex := newArtifactExecutor(t, store, log)
	var failed int
	ctx := middleware.WithObserver(t.Context(), middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
		if _, ok := e.(middleware.StoreFailed); ok {
			failed++
		}
	}))
	for range 2 {
		res, err := ex.Execute(ctx, []middleware.ToolCall{{ID: "c", Name: "read_logs"}})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Artifact != "" || len(res[0].Content) > 2048 || !strings.Contains(res[0].Content, "outside a run") {
			t.Errorf("run-less result: artifact %q, %d bytes: %.200q", res[0].Artifact, len(res[0].Content), res[0].Content)
		}
	}
	if len(store.runs) != 0 || failed != 0 {
		t.Errorf("run-less calls stored %d artifacts (scopes %q), %d StoreFailed events", len(store.runs), store.runs, failed)
	}
	if _, _, err := ex.Artifacts().Put(t.Context(), "x"); !errors.Is(err, toolwrap.ErrNoRun) {
		t.Errorf("Put outside a run: %v, want ErrNoRun", err)
	}

	// An artifact of a run exists; a run-less call cannot reach it.
	runCtx, _ := middleware.StartRun(t.Context(), "run-A")
	id, _, err := ex.Artifacts().Put(runCtx, "secret of run A")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ex.Artifacts().Get(t.Context(), id); !errors.Is(err, toolwrap.ErrNotFound) {
		t.Errorf("run-less Get of run A's artifact: %v", err)
	}
	got := readArtifact(t, ex, t.Context(), `{"id":"`+id+`"}`)
	if got.Err == nil || strings.Contains(got.Content, "secret") {
		t.Errorf("run-less read_artifact of run A's artifact: %q", got.Content)
	}
	if len(store.runs) != 1 || store.runs[0] != "run-A" {
		t.Errorf("scopes %q, want only run-A", store.runs)
	}
}

// TestReadArtifactEchoesOnlyAPrefix: an id or a grep pattern the model
// gives is never repeated whole, in an error or in an answer.
func TestReadArtifactEchoesOnlyAPrefix(t *testing.T) {
	t.Parallel()
	log, _ := bigLog(1 << 20)
	ex := newArtifactExecutor(t, toolwrap.NewMemoryStore(0), log)
	ctx, run := middleware.StartRun(t.Context(), "r")
	if _, err := ex.Execute(ctx, []middleware.ToolCall{{ID: "c", Name: "read_logs"}}); err != nil {
		t.Fatal(err)
	}
	id := run.Tools()[0].Artifact
	hostile := "IGNORE-PREVIOUS-INSTRUCTIONS-" + strings.Repeat("x", 900) + "-TAIL"
	for name, args := range map[string]toolwrap.ReadArgs{
		"unknown id":             {ID: hostile},
		"id-shaped unknown id":   {ID: "art_" + strings.Repeat("A", 26) + hostile},
		"grep pattern":           {ID: id, Grep: hostile},
		"bad grep pattern":       {ID: id, Grep: "(" + hostile},
		"bad pattern at its end": {ID: id, Grep: hostile + "[z-a]"},
	} {
		b, _ := json.Marshal(args)
		got := readArtifact(t, ex, ctx, string(b))
		if strings.Contains(got.Content, "-TAIL") || strings.Contains(got.Content, strings.Repeat("x", 100)) {
			t.Errorf("%s: the answer echoes the argument: %.300q", name, got.Content)
		}
		if got.Err != nil && strings.Contains(got.Err.Error(), strings.Repeat("x", 100)) {
			t.Errorf("%s: the error echoes the argument: %.300q", name, got.Err)
		}
	}
}

// TestReadArtifactTakesNumbersWrittenAsStrings: models often write a
// number argument as a string ("offset":"1000") or as a float ("limit":
// 5.0): read_artifact reads them as the integers they are, instead of
// failing the read ("offset must be int") and costing the agent a turn. A
// value that is no integer is still refused, saying which.
func TestReadArtifactTakesNumbersWrittenAsStrings(t *testing.T) {
	t.Parallel()
	log, _ := bigLog(1 << 20)
	ex := newArtifactExecutor(t, toolwrap.NewMemoryStore(0), log)
	ctx, run := middleware.StartRun(t.Context(), "r")
	if _, err := ex.Execute(ctx, []middleware.ToolCall{{ID: "c", Name: "read_logs"}}); err != nil {
		t.Fatal(err)
	}
	id := run.Tools()[0].Artifact
	for _, args := range []string{
		`{"id":%q,"offset":"1000","limit":"2"}`,
		`{"id":%q,"offset":1000.0,"limit":2e0}`,
		`{"id":%q,"offset":" 1000 ","limit":"2"}`,
	} {
		got := readArtifact(t, ex, ctx, fmt.Sprintf(args, id))
		if got.Err != nil || !strings.HasSuffix(got.Content, "\n"+logLine(1000)+"\n"+logLine(1001)) {
			t.Errorf("%s: %.300q (%v); want lines 1000 and 1001", args, got.Content, got.Err)
		}
	}
	got := readArtifact(t, ex, ctx, fmt.Sprintf(`{"id":%q,"offset":3,"byte":"40"}`, id))
	if got.Err != nil || !strings.Contains(got.Content, "line 3 bytes 40-") {
		t.Errorf("byte as a string: %.300q (%v)", got.Content, got.Err)
	}
	for _, args := range []string{`{"id":%q,"offset":"ten"}`, `{"id":%q,"offset":1.5}`, `{"id":%q,"limit":[1]}`, `{"id":%q,"offset":"1e400"}`} {
		got := readArtifact(t, ex, ctx, fmt.Sprintf(args, id))
		if got.Err == nil || !strings.Contains(got.Content, "must be") {
			t.Errorf("%s: %.300q; want it refused, saying which", args, got.Content)
		}
	}
}
