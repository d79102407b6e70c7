package toolwrap_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/toolwrap"
)

// An observer that calls runtime.Goexit (testing's FailNow) when told of
// a call, or that panics when told of it and calls Goexit when told of
// the recovered panic, under any context (one that never ends, a
// cancellable one, one with a deadline, a run's deadline), sequential or
// parallel (a worker pool, a group started at once), with any executor
// timeout: Execute returns to its caller, and every call has its own
// result or a typed error (ErrPanic), never an empty result.
func TestObserverCallingGoexitUnderAnyContextFailsOnlyItsCall(t *testing.T) {
	t.Parallel()
	quits := func(context.Context, string) (string, error) { runtime.Goexit(); return "", nil }
	ok := func(context.Context, string) (string, error) { return "fine", nil }
	tools := []toolwrap.Tool{{Name: "ok", Call: ok}, {Name: "quits", Call: quits},
		{Name: "other", Meta: toolwrap.Meta{Timeout: 2 * time.Hour}, Call: ok},
		{Name: "side", Meta: toolwrap.Meta{SideEffects: true}, Call: ok}}
	observers := map[string]func(middleware.Event){
		"goexit": func(e middleware.Event) {
			if f, ok := e.(middleware.ToolFinished); ok && f.CallID == "2" {
				runtime.Goexit()
			}
		},
		"goexit-all": func(e middleware.Event) {
			if _, ok := e.(middleware.ToolFinished); ok {
				runtime.Goexit()
			}
		},
		"panic-then-goexit": func(e middleware.Event) {
			switch f := e.(type) {
			case middleware.ToolFinished:
				if f.CallID == "2" {
					panic("observer broken")
				}
			case middleware.PanicRecovered:
				runtime.Goexit()
			}
		},
	}
	contexts := []string{"plain", "cancel", "deadline", "run-deadline"}
	turns := [][]string{
		{"ok", "ok", "ok"},
		{"ok", "other", "ok"},
		{"ok", "quits", "other"},
		{"quits", "quits", "quits"},
		{"ok", "side", "ok", "ok"},
	}
	for obsName, obs := range observers {
		for _, kind := range contexts {
			for _, par := range []int{1, 2, 3} {
				for _, timeout := range []time.Duration{0, time.Hour} {
					for _, names := range turns {
						name := fmt.Sprintf("%s/%s/parallel=%d/timeout=%v/%v", obsName, kind, par, timeout, names)
						t.Run(name, func(t *testing.T) {
							synctest.Test(t, func(t *testing.T) {
								playObserverGoexit(t, tools, obs, obsName == "panic-then-goexit", kind, par, timeout, names)
							})
						})
					}
				}
			}
		}
	}
}

func playObserverGoexit(t *testing.T, tools []toolwrap.Tool, obs func(middleware.Event), panics bool, kind string, par int, timeout time.Duration, names []string) {
	cfg := toolwrap.Config{MaxParallel: par, Timeout: timeout}
	ctx := middleware.WithObserver(context.Background(), middleware.ObserverFunc(func(_ context.Context, e middleware.Event) { obs(e) }))
	switch kind {
	case "cancel":
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
	case "deadline":
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 24*time.Hour)
		defer cancel()
	case "run-deadline":
		ctx, _ = middleware.StartRun(ctx, "run-goexit")
		cfg.RunTimeout = 24 * time.Hour
	}
	ex, err := toolwrap.New(tools, cfg)
	if err != nil {
		t.Fatal(err)
	}
	calls := make([]middleware.ToolCall, len(names))
	for i, n := range names {
		calls[i] = middleware.ToolCall{ID: fmt.Sprint(i + 1), Name: n}
	}
	var res []toolwrap.Result
	returned := false
	done := make(chan struct{})
	go func() {
		defer close(done)
		res, err = ex.Execute(ctx, calls)
		returned = true
	}()
	select {
	case <-done:
	case <-time.After(time.Hour):
		t.Fatalf("Execute had not returned after an hour")
	}
	if !returned {
		t.Fatal("Execute's caller was ended by the observer's Goexit")
	}
	if err != nil || len(res) != len(calls) {
		t.Fatalf("%d results for %d calls, %v", len(res), len(calls), err)
	}
	for i, r := range res {
		c := calls[i]
		if r.CallID != c.ID || r.Name != c.Name {
			t.Fatalf("result %d: %+v, want call %s's", i, r, c.ID)
		}
		switch {
		case panics && c.ID == "2" && !errors.Is(r.Err, toolwrap.ErrPanic):
			t.Errorf("call 2 (%s), whose report panicked: %q, %v; want a panic", c.Name, r.Content, r.Err)
		case r.Err == nil:
			if c.Name == "quits" || r.Content != "fine" {
				t.Errorf("call %s (%s): %q, no error: an empty or false success", c.ID, c.Name, r.Content)
			}
		case !errors.Is(r.Err, toolwrap.ErrPanic) || !errors.Is(r.Err, middleware.ErrPanic):
			t.Errorf("call %s (%s): %v, want its result or a panic", c.ID, c.Name, r.Err)
		case r.Content != r.Err.Error():
			t.Errorf("call %s (%s): observation %q is not its error %q", c.ID, c.Name, r.Content, r.Err)
		}
	}
}
