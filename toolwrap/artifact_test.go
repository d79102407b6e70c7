package toolwrap_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/observe"
	"github.com/tokenwise/tokenwise/tokens"
	"github.com/tokenwise/tokenwise/toolwrap"
)

// bigLog returns a log of about size bytes, one numbered line each, with
// one ERROR line in the middle.
func bigLog(size int) (string, int) {
	var b strings.Builder
	i := 0
	for b.Len() < size {
		if i == 15000 {
			fmt.Fprintf(&b, "2025-11-26T08:00:00Z ERROR kernel: oom-killer invoked for pid=4242 line=%06d\n", i)
		} else {
			fmt.Fprintf(&b, "2025-11-26T08:00:00Z INFO  nginx: GET /api/v1/items 200 line=%06d\n", i)
		}
		i++
	}
	return b.String(), i
}

func logLine(i int) string {
	return fmt.Sprintf("2025-11-26T08:00:00Z INFO  nginx: GET /api/v1/items 200 line=%06d", i)
}

func newArtifactExecutor(t testing.TB, store toolwrap.Store, log string) *toolwrap.Executor {
	t.Helper()
	arts := toolwrap.NewArtifacts(store, toolwrap.ArtifactConfig{ThresholdTokens: 1000}, nil)
	ex, err := toolwrap.New([]toolwrap.Tool{{Name: "read_logs", Call: func(context.Context, string) (string, error) {
		return log, nil
	}}}, toolwrap.Config{MaxParallel: 4}, toolwrap.WithArtifacts(arts))
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

func readArtifact(t *testing.T, ex *toolwrap.Executor, ctx context.Context, args string) toolwrap.Result {
	t.Helper()
	res, err := ex.Execute(ctx, []middleware.ToolCall{{ID: "r", Name: toolwrap.ReadArtifactName, Arguments: args}})
	if err != nil {
		t.Fatal(err)
	}
	return res[0]
}

func TestArtifactTwoMegabyteResult(t *testing.T) {
	t.Parallel()
	for name, mk := range map[string]func(t *testing.T) toolwrap.Store{
		"memory": func(*testing.T) toolwrap.Store { return toolwrap.NewMemoryStore(0) },
		"dir": func(t *testing.T) toolwrap.Store {
			s, err := toolwrap.NewDirStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	} {
		t.Run(name, func(t *testing.T) {
			testArtifactTwoMegabyteResult(t, mk(t))
		})
	}
}

func testArtifactTwoMegabyteResult(t *testing.T, store toolwrap.Store) {
	log, nLines := bigLog(2 << 20)
	ex := newArtifactExecutor(t, store, log)
	ctx, run := middleware.StartRun(t.Context(), "run-A")
	var stored []middleware.ArtifactStored
	ctx = middleware.WithObserver(ctx, middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
		if a, ok := e.(middleware.ArtifactStored); ok {
			stored = append(stored, a)
		}
	}))
	res, err := ex.Execute(ctx, []middleware.ToolCall{{ID: "c1", Name: "read_logs", Arguments: "{}"}})
	if err != nil {
		t.Fatal(err)
	}
	r := res[0]
	if r.Artifact == "" || !toolwrap.ValidID(r.Artifact) {
		t.Fatalf("not offloaded: artifact %q", r.Artifact)
	}
	est := tokens.New()
	if n := len(r.Content); n >= 2048 {
		t.Errorf("excerpt is %d bytes, want < 2KiB", n)
	}
	excerptTokens := est.Text("gpt-4o", r.Content)
	if excerptTokens >= 1000 || excerptTokens*500 > r.SavedTokens {
		t.Errorf("excerpt is %d tokens", excerptTokens)
	}
	t.Logf("2MB result (%d lines) -> excerpt of %d bytes, %d tokens; saved ~%d tokens", nLines, len(r.Content), excerptTokens, r.SavedTokens)
	for _, want := range []string{r.Artifact, logLine(0), logLine(nLines - 1), fmt.Sprintf("%d bytes", len(log)), "read_artifact"} {
		if !strings.Contains(r.Content, want) {
			t.Errorf("excerpt lacks %q:\n%s", want, r.Content)
		}
	}
	if r.SavedTokens < 100_000 {
		t.Errorf("saved tokens %d, want the bulk of a 2MB log", r.SavedTokens)
	}
	if len(stored) != 1 || stored[0].ID != r.Artifact || stored[0].Bytes != len(log) {
		t.Errorf("ArtifactStored events %+v", stored)
	}
	if tot := run.Totals(); tot.Artifacts != 1 || tot.ArtifactSavedTokens != r.SavedTokens {
		t.Errorf("run totals: %d artifacts, %d saved", tot.Artifacts, tot.ArtifactSavedTokens)
	}
	if !strings.Contains(observe.Report(run), "artifacts: 1") {
		t.Errorf("report lacks artifacts:\n%s", observe.Report(run))
	}

	// exact lines by range
	got := readArtifact(t, ex, ctx, fmt.Sprintf(`{"id":%q,"offset":1000,"limit":100}`, r.Artifact))
	lines := strings.Split(got.Content, "\n")
	if len(lines) != 101 || lines[0] != fmt.Sprintf("[%s lines 1000-1099 of %d]", r.Artifact, nLines) {
		t.Fatalf("read: %d lines, header %q", len(lines), lines[0])
	}
	for i, l := range lines[1:] {
		if l != logLine(1000+i) {
			t.Fatalf("line %d = %q, want %q", 1000+i, l, logLine(1000+i))
		}
	}
	// grep finds the line in the middle
	got = readArtifact(t, ex, ctx, fmt.Sprintf(`{"id":%q,"grep":"ERROR.*oom"}`, r.Artifact))
	if !strings.Contains(got.Content, "15000: 2025-11-26T08:00:00Z ERROR kernel: oom-killer invoked for pid=4242 line=015000") {
		t.Errorf("grep: %q", got.Content)
	}
	// bounded: a grep matching everything does not flood the context
	got = readArtifact(t, ex, ctx, fmt.Sprintf(`{"id":%q,"grep":"."}`, r.Artifact))
	if len(got.Content) > 16<<10 || !strings.Contains(got.Content, "more matches exist") {
		t.Errorf("grep . returned %d bytes", len(got.Content))
	}
	got = readArtifact(t, ex, ctx, fmt.Sprintf(`{"id":%q,"limit":100000}`, r.Artifact))
	if n := strings.Count(got.Content, "\n"); n > 200 || len(got.Content) > 16<<10 {
		t.Errorf("a huge limit returned %d lines, %d bytes", n, len(got.Content))
	}
	if got := readArtifact(t, ex, ctx, fmt.Sprintf(`{"id":%q,"grep":"("}`, r.Artifact)); got.Err == nil {
		t.Error("a bad pattern is not an error observation")
	}

	// another run cannot read it, nor can code outside a run
	for _, other := range []context.Context{
		func() context.Context { c, _ := middleware.StartRun(t.Context(), "run-B"); return c }(),
		t.Context(),
	} {
		got := readArtifact(t, ex, other, fmt.Sprintf(`{"id":%q,"offset":0,"limit":10}`, r.Artifact))
		if got.Err == nil || !strings.Contains(got.Content, "not found") || strings.Contains(got.Content, "nginx") {
			t.Errorf("other run read %q", got.Content)
		}
		if _, err := ex.Artifacts().Get(other, r.Artifact); !errors.Is(err, toolwrap.ErrNotFound) {
			t.Errorf("Get from another run: %v", err)
		}
	}
	// guessed or malformed ids
	for _, id := range []string{"art_AAAAAAAAAAAAAAAAAAAAAAAAAA", "../../etc/passwd", r.Artifact + "x"} {
		if _, err := ex.Artifacts().Get(ctx, id); !errors.Is(err, toolwrap.ErrNotFound) {
			t.Errorf("Get(%q): %v", id, err)
		}
	}
}

func TestArtifactSmallResultStaysInline(t *testing.T) {
	t.Parallel()
	ex := newArtifactExecutor(t, toolwrap.NewMemoryStore(0), "Disk Usage: 95% (CRITICAL). Large folder: /var/log")
	res, _ := ex.Execute(t.Context(), []middleware.ToolCall{{ID: "c", Name: "read_logs"}})
	if res[0].Artifact != "" || res[0].Content != "Disk Usage: 95% (CRITICAL). Large folder: /var/log" {
		t.Errorf("%+v", res[0])
	}
}

func TestArtifactStoreFailureKeepsContextSmall(t *testing.T) {
	t.Parallel()
	log, _ := bigLog(1 << 20)
	ex := newArtifactExecutor(t, toolwrap.NewMemoryStore(1000), log) // too small: ErrTooLarge
	var failed int
	ctx := middleware.WithObserver(t.Context(), middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
		if _, ok := e.(middleware.StoreFailed); ok {
			failed++
		}
	}))
	ctx, _ = middleware.StartRun(ctx, "r")
	res, _ := ex.Execute(ctx, []middleware.ToolCall{{ID: "c", Name: "read_logs"}})
	if res[0].Artifact != "" || len(res[0].Content) > 2048 || !strings.Contains(res[0].Content, "could not be stored") || failed != 1 {
		t.Errorf("%d bytes, failed events %d: %.200q", len(res[0].Content), failed, res[0].Content)
	}
}

func TestMemoryStoreEvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	s := toolwrap.NewMemoryStore(100)
	ctx := t.Context()
	put := func(id string, n int) {
		if err := s.Put(ctx, "r", id, toolwrap.NewText([]byte(strings.Repeat("x", n)))); err != nil {
			t.Fatal(err)
		}
	}
	put("a", 40)
	put("b", 40)
	s.Get(ctx, "r", "a") // a is now the most recent
	put("c", 40)         // evicts b
	if _, err := s.Get(ctx, "r", "b"); !errors.Is(err, toolwrap.ErrNotFound) {
		t.Error("b not evicted")
	}
	if _, err := s.Get(ctx, "r", "a"); err != nil {
		t.Error("a evicted")
	}
	if want := int64(2 * (40 + strconv.IntSize/8)); s.Size() != want { // two texts of 40 bytes and one line each
		t.Errorf("size %d, want %d", s.Size(), want)
	}
	if err := s.Put(ctx, "r", "d", toolwrap.NewText(make([]byte, 101))); !errors.Is(err, toolwrap.ErrTooLarge) {
		t.Errorf("oversized put: %v", err)
	}
}

func TestTextLines(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in    string
		lines []string
	}{
		{"", nil},
		{"a", []string{"a"}},
		{"a\n", []string{"a"}},
		{"a\nb", []string{"a", "b"}},
		{"a\n\nb\n", []string{"a", "", "b"}},
	} {
		tx := toolwrap.NewText([]byte(tc.in))
		if got := tx.Range(0, 10); fmt.Sprint(got) != fmt.Sprint(tc.lines) || tx.Lines() != len(tc.lines) {
			t.Errorf("%q: %q (%d lines), want %q", tc.in, got, tx.Lines(), tc.lines)
		}
	}
}

func TestCanonicalArgs(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`{"b":1, "a":{"d":2,"c":1.50}}`: `{"a":{"c":1.50,"d":2},"b":1}`,
		`not json`:                      `not json`,
		`{"a":1} {"b":2}`:               `{"a":1} {"b":2}`,
	} {
		if got := toolwrap.CanonicalArgs(in); got != want {
			t.Errorf("CanonicalArgs(%s) = %s, want %s", in, got, want)
		}
	}
}

// An artifact its full MemoryStore evicted (its run had ended: a store
// evicts nothing of a run in progress) is reported as evicted
// (ErrEvicted, which matches ErrNotFound too) to a run of the same id
// resumed later, and read_artifact tells the agent it is no longer kept
// and how to get it again, instead of "not found", as if its id were
// wrong; an id the store never held is still "not found".
func TestEvictedArtifactSaysSo(t *testing.T) {
	t.Parallel()
	s := toolwrap.NewMemoryStore(100)
	a := toolwrap.NewArtifacts(s, toolwrap.ArtifactConfig{}, nil)
	first := func() string { // a run that ends
		ctx, _ := middleware.StartRun(t.Context(), "r")
		id, _, err := a.Put(ctx, strings.Repeat("x", 60))
		if err != nil {
			t.Fatal(err)
		}
		return id
	}()
	runtime.GC()
	ctx, _ := middleware.StartRun(t.Context(), "r")                   // resumed
	if _, _, err := a.Put(ctx, strings.Repeat("y", 60)); err != nil { // evicts the first
		t.Fatal(err)
	}
	_, err := a.Get(ctx, first)
	if !errors.Is(err, toolwrap.ErrEvicted) || !errors.Is(err, toolwrap.ErrNotFound) {
		t.Fatalf("the evicted artifact: %v, want ErrEvicted (and ErrNotFound)", err)
	}
	_, err = a.Read(ctx, toolwrap.ReadArgs{ID: first})
	if err == nil || !strings.Contains(err.Error(), "no longer kept") || !strings.Contains(err.Error(), "again") {
		t.Fatalf("read_artifact of the evicted artifact: %v", err)
	}
	_, err = a.Read(ctx, toolwrap.ReadArgs{ID: "art_00000000000000000000000000000000"})
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("read_artifact of an unknown id: %v", err)
	}
}

// TestRunStoreKeepsItsArtifacts: the run's default store keeps every
// artifact for the run's life: one past its bound is refused
// (ErrStoreFull, which is ErrTooLarge too), and the artifacts it holds
// stay readable.
func TestRunStoreKeepsItsArtifacts(t *testing.T) {
	t.Parallel()
	ctx, _ := middleware.StartRun(t.Context(), "r")
	a := toolwrap.RunArtifacts(ctx)
	chunk := strings.Repeat("line of a log\n", (1<<20)/14)
	var ids []string
	var err error
	for range toolwrap.RunStoreBytes>>20 + 2 {
		var id string
		if id, _, err = a.Put(ctx, chunk+strings.Repeat("x", len(ids))); err != nil {
			break
		}
		ids = append(ids, id)
	}
	if !errors.Is(err, toolwrap.ErrStoreFull) || !errors.Is(err, toolwrap.ErrTooLarge) {
		t.Fatalf("past the bound: %v, want ErrStoreFull", err)
	}
	if len(ids) == 0 {
		t.Fatal("nothing stored")
	}
	for _, id := range ids {
		if _, err := a.Get(ctx, id); err != nil {
			t.Errorf("artifact %s of the run: %v", id, err)
		}
	}
}
