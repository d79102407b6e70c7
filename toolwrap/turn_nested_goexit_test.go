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

// Under a context that never ends, a tool that calls runtime.Goexit and an
// observer that calls it too when told of the failed call (testing's
// FailNow in both: a test's tool and a test's observer) end the turn's
// goroutines, never leave Execute waiting: every call has a result, none
// an empty success, sequential or parallel.
func TestToolAndObserverCallingGoexitUnderAPlainContext(t *testing.T) {
	t.Parallel()
	quits := func(context.Context, string) (string, error) { runtime.Goexit(); return "", nil }
	ok := func(context.Context, string) (string, error) { return "fine", nil }
	for _, par := range []int{1, 2, 3} {
		for _, calls := range [][]middleware.ToolCall{
			{{ID: "1", Name: "quits"}},
			{{ID: "1", Name: "quits"}, {ID: "2", Name: "ok"}, {ID: "3", Name: "quits"}},
			{{ID: "1", Name: "ok"}, {ID: "2", Name: "quits"}, {ID: "3", Name: "ok"}, {ID: "4", Name: "side"}},
		} {
			t.Run(fmt.Sprintf("parallel=%d/calls=%d", par, len(calls)), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					ex, err := toolwrap.New([]toolwrap.Tool{{Name: "ok", Call: ok}, {Name: "quits", Call: quits},
						{Name: "side", Meta: toolwrap.Meta{SideEffects: true}, Call: ok}}, toolwrap.Config{MaxParallel: par})
					if err != nil {
						t.Fatal(err)
					}
					ctx := middleware.WithObserver(context.Background(), middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
						if f, ok := e.(middleware.ToolFinished); ok && errors.Is(f.Err, toolwrap.ErrPanic) {
							runtime.Goexit()
						}
					}))
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
						if r.CallID != calls[i].ID || r.Name != calls[i].Name {
							t.Fatalf("result %d: %+v, want call %s's", i, r, calls[i].ID)
						}
						if calls[i].Name == "quits" && !errors.Is(r.Err, toolwrap.ErrPanic) {
							t.Errorf("result %d: %q, %v; want a panic", i, r.Content, r.Err)
						}
						if r.Err == nil && r.Content != "fine" {
							t.Errorf("result %d: %+v: an empty success", i, r)
						}
					}
				})
			})
		}
	}
}
