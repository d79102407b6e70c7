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

// An observer that calls runtime.Goexit when told of a call given up on
// at its timeout in a group started at once (told on the goroutine that
// runs the turn): the group's other calls, whose tools returned, keep
// their results. Before, they were lost with the goroutine and failed as
// panics.
func TestObserverGoexitWhenToldOfAGivenUpCallKeepsTheGroupsResults(t *testing.T) {
	t.Parallel()
	for _, plain := range []bool{true, false} {
		t.Run(fmt.Sprintf("plain=%v", plain), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ok := func(context.Context, string) (string, error) { return "fine", nil }
				stubborn := func(context.Context, string) (string, error) { time.Sleep(5 * time.Second); return "late", nil }
				ex, err := toolwrap.New([]toolwrap.Tool{{Name: "ok", Call: ok}, {Name: "stubborn", Call: stubborn}},
					toolwrap.Config{MaxParallel: 3, Timeout: time.Second})
				if err != nil {
					t.Fatal(err)
				}
				ctx := context.Background()
				if !plain {
					var cancel context.CancelFunc
					ctx, cancel = context.WithCancel(ctx)
					defer cancel()
				}
				ctx = middleware.WithObserver(ctx, middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
					if f, ok := e.(middleware.ToolFinished); ok && errors.Is(f.Err, toolwrap.ErrTimeout) {
						runtime.Goexit()
					}
				}))
				defer time.Sleep(time.Minute) // the stubborn tool ends
				calls := []middleware.ToolCall{{ID: "1", Name: "ok"}, {ID: "2", Name: "stubborn"}, {ID: "3", Name: "ok"}}
				var res []toolwrap.Result
				done := make(chan struct{})
				go func() {
					defer close(done)
					res, err = ex.Execute(ctx, calls)
				}()
				<-done
				if err != nil || len(res) != 3 {
					t.Fatalf("%d results, %v", len(res), err)
				}
				for _, i := range []int{0, 2} {
					if r := res[i]; r.CallID != calls[i].ID || r.Err != nil || r.Content != "fine" {
						t.Errorf("call %s, whose tool returned: %+v", calls[i].ID, r)
					}
				}
				if r := res[1]; r.CallID != "2" || !errors.Is(r.Err, toolwrap.ErrTimeout) {
					t.Errorf("call 2, given up on: %+v", r)
				}
			})
		})
	}
}
