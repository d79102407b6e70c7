package toolwrap_test

import (
	"context"
	"errors"
	"math"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/toolwrap"
)

// slowLookup is an idempotent tool that answers after an hour, or ends
// with its context.
func slowLookup() *toolwrap.Executor {
	ex, _ := toolwrap.New([]toolwrap.Tool{{Name: "lookup", Meta: toolwrap.Meta{Idempotent: true},
		Call: func(ctx context.Context, _ string) (string, error) {
			select {
			case <-time.After(time.Hour):
				return "value", nil
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}}}, toolwrap.Config{CacheTTL: time.Hour})
	return ex
}

var lookupCall = []middleware.ToolCall{{ID: "c", Name: "lookup", Arguments: `{"k":1}`}}

// Two runs that make the same call to an idempotent tool share one call
// of the tool, but each waits on its own context: a run cancelled while
// it waits ends then (before, it waited for the other run's call, an hour
// here, forever without a timeout), and a run whose call was led by a
// cancelled run goes on and gets the tool's answer (before, it failed
// with the other run's cancellation).
func TestSharedCallWaitsOnItsOwnContext(t *testing.T) {
	t.Parallel()
	t.Run("the follower cancelled", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ex := slowLookup()
			ctxA, _ := middleware.StartRun(t.Context(), "runA")
			ctxB, cancelB := context.WithCancel(t.Context())
			ctxB, _ = middleware.StartRun(ctxB, "runB")
			go ex.Execute(ctxA, lookupCall)
			synctest.Wait()
			start := time.Now()
			time.AfterFunc(time.Second, cancelB)
			_, err := ex.Execute(ctxB, lookupCall)
			if el := time.Since(start); el != time.Second || !errors.Is(err, context.Canceled) {
				t.Errorf("run B cancelled after 1s: Execute returned after %v with %v", el, err)
			}
		})
	})
	t.Run("the leader cancelled", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ex := slowLookup()
			ctxA, cancelA := context.WithCancel(t.Context())
			ctxA, _ = middleware.StartRun(ctxA, "runA")
			ctxB, _ := middleware.StartRun(t.Context(), "runB")
			go ex.Execute(ctxA, lookupCall)
			synctest.Wait()
			done := make(chan []toolwrap.Result)
			go func() { r, _ := ex.Execute(ctxB, lookupCall); done <- r }()
			synctest.Wait()
			time.Sleep(time.Second)
			cancelA()
			if r := <-done; r[0].Err != nil || r[0].Content != "value" {
				t.Errorf("run B: %q, %v; want the tool's answer", r[0].Content, r[0].Err)
			}
		})
	})
}

// The result cache keys a call on its canonical arguments, and never
// takes two different arguments for one: bytes that are not UTF-8 and
// escaped surrogates, which JSON decoding turns into U+FFFD alike, keep
// their calls apart.
func TestCacheKeyKeepsArgumentsApart(t *testing.T) {
	t.Parallel()
	ex, _ := toolwrap.New([]toolwrap.Tool{{Name: "echo", Meta: toolwrap.Meta{Idempotent: true},
		Call: func(_ context.Context, args string) (string, error) { return args, nil }}},
		toolwrap.Config{CacheTTL: time.Hour})
	for _, p := range [][2]string{{`{"q":"\ud800"}`, `{"q":"\udfff"}`}, {"{\"q\":\"\xff\"}", "{\"q\":\"\xfe\"}"}, {`{"q":"\uD83D"}`, `{"q":"\uDE00"}`}} {
		ex.Execute(t.Context(), []middleware.ToolCall{{ID: "1", Name: "echo", Arguments: p[0]}})
		r, _ := ex.Execute(t.Context(), []middleware.ToolCall{{ID: "2", Name: "echo", Arguments: p[1]}})
		if r[0].Content != p[1] || r[0].Cached {
			t.Errorf("call with %q got %q (cached %v)", p[1], r[0].Content, r[0].Cached)
		}
	}
	// Equal arguments written differently still share their result.
	ex.Execute(t.Context(), []middleware.ToolCall{{ID: "3", Name: "echo", Arguments: `{"a":1,"b":"é"}`}})
	if r, _ := ex.Execute(t.Context(), []middleware.ToolCall{{ID: "4", Name: "echo", Arguments: `{ "b":"\u00e9", "a":1 }`}}); !r[0].Cached {
		t.Error("equal arguments written differently: not cached")
	}
}

// A MemoryStore's bound counts an artifact's line index (a word a line)
// with its bytes: a store of 16 MiB filled with texts of line breaks only
// holds about its bound of heap (before, nine times it).
func TestMemoryStoreBoundCountsTheLineIndex(t *testing.T) {
	const bound = 16 << 20
	s := toolwrap.NewMemoryStore(bound)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 8 {
		if err := s.Put(t.Context(), "r", toolwrap.NewID(), toolwrap.NewText([]byte(strings.Repeat("\n", bound/16)))); err != nil {
			t.Fatal(err)
		}
		if s.Size() > bound {
			t.Fatalf("the store counts %d bytes, bound %d", s.Size(), bound)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if held := int64(after.HeapAlloc) - int64(before.HeapAlloc); held > bound+bound/2 {
		t.Errorf("a store bounded at %d holds %d bytes of heap (Size %d)", bound, held, s.Size())
	}
	if err := s.Put(t.Context(), "r", toolwrap.NewID(), toolwrap.NewText([]byte(strings.Repeat("\n", bound/4)))); !errors.Is(err, toolwrap.ErrTooLarge) {
		t.Errorf("a text whose index alone is over the bound: %v, want ErrTooLarge", err)
	}
	runtime.KeepAlive(s)
}

// Range and ReadRange take any limit: offset+limit beyond the largest int
// reads to the end (before, a panic).
func TestRangeOfAnyLimit(t *testing.T) {
	t.Parallel()
	if got := toolwrap.NewText([]byte("a\nb\nc")).Range(2, math.MaxInt); len(got) != 1 || got[0] != "c" {
		t.Errorf("Range(2, MaxInt) = %q", got)
	}
	a := toolwrap.NewArtifacts(toolwrap.NewMemoryStore(0), toolwrap.ArtifactConfig{}, nil)
	ctx, _ := middleware.StartRun(t.Context(), "r")
	id := toolwrap.NewID()
	if err := a.Store().Put(ctx, "r", id, toolwrap.NewText([]byte("a\nb\nc"))); err != nil {
		t.Fatal(err)
	}
	if lines, _, err := a.ReadRange(ctx, id, 1, math.MaxInt); err != nil || len(lines) != 2 {
		t.Errorf("ReadRange(1, MaxInt) = %q, %v", lines, err)
	}
}

// With FailOnError, Execute returns the failed call's own error, whose
// message is the observation the model got (before: wrapped once more, a
// timeout "after 0s", a tool's error said twice).
func TestFailOnErrorReturnsTheCallsError(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ex, _ := toolwrap.New([]toolwrap.Tool{
			{Name: "slow", Meta: toolwrap.Meta{Timeout: 30 * time.Second},
				Call: func(ctx context.Context, _ string) (string, error) { <-ctx.Done(); return "", ctx.Err() }},
			{Name: "bad", Call: func(context.Context, string) (string, error) { return "", errors.New("boom") }},
		}, toolwrap.Config{FailOnError: true})
		for name, want := range map[string]string{"slow": "tool slow timed out after 30s", "bad": "tool bad failed: boom"} {
			res, err := ex.Execute(t.Context(), []middleware.ToolCall{{ID: "c", Name: name}})
			var te *toolwrap.Error
			if !errors.As(err, &te) || err.Error() != want || res[0].Content != want {
				t.Errorf("%s: err %q, observation %q; want both %q", name, err, res[0].Content, want)
			}
		}
	})
}

// What the model reads of a failed call is bounded: a huge error, a huge
// panic value, a huge unknown tool name, or read_artifact arguments with
// a number of 5,000 digits are not repeated whole.
func TestErrorObservationsAreBounded(t *testing.T) {
	t.Parallel()
	a := toolwrap.NewArtifacts(toolwrap.NewMemoryStore(0), toolwrap.ArtifactConfig{ThresholdBytes: 4096}, nil)
	ex, _ := toolwrap.New([]toolwrap.Tool{
		{Name: "bad", Call: func(context.Context, string) (string, error) { return "", errors.New(strings.Repeat("E", 10<<20)) }},
		{Name: "boom", Call: func(context.Context, string) (string, error) { panic(strings.Repeat("P", 10<<20)) }},
	}, toolwrap.Config{}, toolwrap.WithArtifacts(a))
	ctx, _ := middleware.StartRun(t.Context(), "r")
	for _, c := range []middleware.ToolCall{
		{ID: "1", Name: "bad"},
		{ID: "2", Name: "boom"},
		{ID: "3", Name: strings.Repeat("x", 1<<20)},
		{ID: "4", Name: toolwrap.ReadArtifactName, Arguments: `{"id":"art_x","offset":1` + strings.Repeat("9", 5000) + `}`},
	} {
		res, _ := ex.Execute(ctx, []middleware.ToolCall{c})
		if n := len(res[0].Content); n > 8192 || res[0].Err == nil {
			t.Errorf("call %s: an observation of %d bytes (err %v)", c.ID, n, res[0].Err)
		}
	}
	if res, _ := ex.Execute(ctx, []middleware.ToolCall{{ID: "5", Name: toolwrap.ReadArtifactName, Arguments: `{"id":"art_x","offset":"x"}`}}); !strings.Contains(res[0].Content, "offset must be int") {
		t.Errorf("a wrong type: %q, want it named", res[0].Content)
	}
}

// The result cache of idempotent tools is bounded in bytes as well as in
// entries (Config.CacheBytes, default 64 MiB): the least recently used
// results leave to make room, and a result larger than the bound is not
// kept. Before, it held up to CacheSize results of any size: 1,024
// results of an idempotent fetch tool of 10 MB each held 10 GB.
func TestToolCacheIsBoundedInBytes(t *testing.T) {
	t.Parallel()
	var runs int
	var huge string
	ex, _ := toolwrap.New([]toolwrap.Tool{{Name: "fetch", Meta: toolwrap.Meta{Idempotent: true},
		Call: func(_ context.Context, args string) (string, error) {
			runs++
			if args == "huge" {
				return huge, nil
			}
			n, _ := strconv.Atoi(args)
			return strings.Repeat("x", n), nil
		}}}, toolwrap.Config{CacheTTL: time.Hour, CacheBytes: 1000})
	fetch := func(args string) bool {
		t.Helper()
		res, err := ex.Execute(t.Context(), []middleware.ToolCall{{ID: "c", Name: "fetch", Arguments: args}})
		if err != nil || res[0].Err != nil {
			t.Fatal(err, res[0].Err)
		}
		return res[0].Cached
	}
	fetch("600")
	if !fetch("600") {
		t.Error("a result within the bound is not cached")
	}
	fetch("601") // 1,201 bytes: the first leaves
	if !fetch("601") {
		t.Error("the latest result is not cached")
	}
	if fetch("600") {
		t.Error("the cache holds 1,201 bytes of results, bound 1,000")
	}
	fetch("2000")
	if fetch("2000") {
		t.Error("a result larger than the bound is cached")
	}
	if runs != 5 {
		t.Errorf("the tool ran %d times, want 5", runs)
	}

	// The default bound: 64 MiB.
	huge = strings.Repeat("y", 64<<20+1)
	ex, _ = toolwrap.New([]toolwrap.Tool{{Name: "fetch", Meta: toolwrap.Meta{Idempotent: true},
		Call: func(_ context.Context, args string) (string, error) { runs++; return huge, nil }}}, toolwrap.Config{CacheTTL: time.Hour})
	runs = 0
	fetch("huge")
	if fetch("huge") || runs != 2 {
		t.Errorf("a result of 64 MiB and a byte cached by default (the tool ran %d times)", runs)
	}
}
