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

// brokenDeadline is a context whose Deadline method panics (a user's
// context type with a bug): the executor's own work for a call panics.
type brokenDeadline struct{ context.Context }

func (brokenDeadline) Deadline() (time.Time, bool) { panic("Deadline is broken") }

// An executor panic in a group of calls started at once (the context's
// Deadline method panics as the call checks whether its context ended)
// and an observer that calls runtime.Goexit when told of the recovered
// panic (testing's FailNow from an observer): every call fails as a panic
// (ErrPanic) and Execute returns, whether the panic's report ends the
// call's goroutine or not. Before, the goroutine ended before it told the
// group, and Execute waited forever.
func TestExecutorPanicAndObserverGoexitInADirectGroupDoNotHangExecute(t *testing.T) {
	t.Parallel()
	for _, goexit := range []bool{false, true} {
		for _, n := range []int{1, 2, 3} {
			t.Run(fmt.Sprintf("goexit=%v/calls=%d", goexit, n), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					ok := func(context.Context, string) (string, error) { return "fine", nil }
					ex, err := toolwrap.New([]toolwrap.Tool{{Name: "ok", Call: ok}}, toolwrap.Config{MaxParallel: 3})
					if err != nil {
						t.Fatal(err)
					}
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					ctx = middleware.WithObserver(ctx, middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
						if _, ok := e.(middleware.PanicRecovered); ok && goexit {
							runtime.Goexit()
						}
					}))
					calls := make([]middleware.ToolCall, n)
					for i := range calls {
						calls[i] = middleware.ToolCall{ID: fmt.Sprint(i + 1), Name: "ok"}
					}
					var res []toolwrap.Result
					done := make(chan struct{})
					go func() {
						defer close(done)
						res, err = ex.Execute(brokenDeadline{ctx}, calls)
					}()
					select {
					case <-done:
					case <-time.After(time.Hour):
						t.Fatalf("Execute had not returned after an hour")
					}
					if err != nil || len(res) != n {
						t.Fatalf("%d results for %d calls, %v", len(res), n, err)
					}
					for i, r := range res {
						if r.CallID != calls[i].ID || r.Name != "ok" {
							t.Fatalf("result %d: %+v, want call %s's", i, r, calls[i].ID)
						}
						if !errors.Is(r.Err, toolwrap.ErrPanic) || r.Content != r.Err.Error() {
							t.Errorf("call %s: %q, %v; want a panic", r.CallID, r.Content, r.Err)
						}
					}
				})
			})
		}
	}
}
