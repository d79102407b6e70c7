package toolwrap_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/toolwrap"
)

// An observer that calls runtime.Goexit when told of a call given up on
// (the executor's own work, on the goroutine that runs the turn) under a
// context that never ends: Execute still returns every call's result,
// the call it was told of keeps its timeout and those whose results were
// lost fail as panics, none an empty success (before: call 2's result was
// empty, with no error).
func TestObserverCallingGoexitBetweenCallsFailsTheCalls(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ex, err := toolwrap.New([]toolwrap.Tool{
			{Name: "stubborn", Call: func(context.Context, string) (string, error) { time.Sleep(5 * time.Second); return "late", nil }},
			{Name: "ok", Call: func(context.Context, string) (string, error) { return "fine", nil }},
		}, toolwrap.Config{MaxParallel: 2, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ctx := middleware.WithObserver(context.Background(), middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
			if f, ok := e.(middleware.ToolFinished); ok && errors.Is(f.Err, toolwrap.ErrTimeout) {
				runtime.Goexit()
			}
		}))
		defer time.Sleep(10 * time.Second) // the stubborn tool ends
		calls := []middleware.ToolCall{{ID: "1", Name: "stubborn"}, {ID: "2", Name: "ok"}}
		var res []toolwrap.Result
		returned := false
		done := make(chan struct{})
		go func() {
			defer close(done)
			res, err = ex.Execute(ctx, calls)
			returned = true
		}()
		<-done
		if !returned {
			t.Fatal("Execute's caller was ended by the observer's Goexit")
		}
		if err != nil || len(res) != 2 {
			t.Fatalf("%d results, %v", len(res), err)
		}
		for i, r := range res {
			if r.CallID != calls[i].ID || r.Name != calls[i].Name {
				t.Fatalf("result %d: %+v, want call %s's", i, r, calls[i].ID)
			}
			if r.Err == nil && r.Content != "fine" {
				t.Errorf("result %d: %+v: an empty success", i, r)
			}
		}
		if !errors.Is(res[0].Err, toolwrap.ErrTimeout) && !errors.Is(res[0].Err, toolwrap.ErrPanic) {
			t.Errorf("call 1: %v, want its timeout or a panic", res[0].Err)
		}
	})
}
