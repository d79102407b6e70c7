package toolwrap_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/toolwrap"
)

// An observer that calls runtime.Goexit (testing's FailNow) when told
// that a call of a group started at once finished ends the goroutine it
// is told on, never leaves Execute waiting: every call keeps its own
// result, whatever the context and the timeout and whether the tool
// returns or calls Goexit itself.
func TestObserverCallingGoexitInADirectGroupDoesNotHangExecute(t *testing.T) {
	t.Parallel()
	quits := func(context.Context, string) (string, error) { runtime.Goexit(); return "", nil }
	ok := func(context.Context, string) (string, error) { return "fine", nil }
	for _, plain := range []bool{true, false} {
		for _, timeout := range []time.Duration{0, time.Second} {
			for _, tool := range []string{"ok", "quits"} {
				if plain && timeout == 0 {
					continue // not a direct group: see TestObserverCallingGoexitBetweenCallsFailsTheCalls
				}
				name := fmt.Sprintf("plain=%v/timeout=%v/%s", plain, timeout, tool)
				t.Run(name, func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						ex, err := toolwrap.New([]toolwrap.Tool{{Name: "ok", Call: ok}, {Name: "quits", Call: quits}},
							toolwrap.Config{MaxParallel: 2, Timeout: timeout})
						if err != nil {
							t.Fatal(err)
						}
						ctx := middleware.WithObserver(context.Background(), middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
							if _, ok := e.(middleware.ToolFinished); ok {
								runtime.Goexit()
							}
						}))
						if !plain {
							var cancel context.CancelFunc
							ctx, cancel = context.WithCancel(ctx)
							defer cancel()
						}
						calls := []middleware.ToolCall{{ID: "1", Name: tool}, {ID: "2", Name: tool}}
						done := make(chan []toolwrap.Result, 1)
						go func() {
							res, _ := ex.Execute(ctx, calls)
							done <- res
						}()
						var res []toolwrap.Result
						select {
						case res = <-done:
						case <-time.After(time.Hour):
							t.Fatalf("Execute had not returned after an hour")
						}
						for i, r := range res {
							if r.CallID != calls[i].ID || r.Name != tool {
								t.Fatalf("result %d: %+v, want call %s's", i, r, calls[i].ID)
							}
							if tool == "ok" && (r.Err != nil || r.Content != "fine") {
								t.Errorf("result %d: %q, %v; want fine", i, r.Content, r.Err)
							}
							if tool == "quits" && r.Err == nil {
								t.Errorf("result %d: %q, want a failure", i, r.Content)
							}
						}
					})
				})
			}
		}
	}
}
