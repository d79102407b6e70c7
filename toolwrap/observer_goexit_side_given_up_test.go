package toolwrap_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/toolwrap"
)

// An observer that calls runtime.Goexit when told that a call of a tool
// with side effects was given up on at its timeout, while that tool still
// runs: the next call of a tool with side effects must not start beside
// it (toolwrap.ErrNotRun), as when the observer returns or panics. The
// same after a call without side effects given up on.
func TestObserverGoexitOnAGivenUpSideEffectCallRunsNoSideEffectBesideIt(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		kind, first string
		par         int
	}{
		{"plain", "deploy", 1}, {"cancel", "deploy", 1}, {"deadline", "deploy", 1},
		{"plain", "probe", 1}, {"cancel", "probe", 1}, {"deadline", "probe", 1},
		{"cancel", "probe", 2}, {"deadline", "probe", 2},
	} {
		kind := c.kind
		t.Run(fmt.Sprintf("%s/%s/par=%d", kind, c.first, c.par), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var running, overlapped atomic.Int32
				deploy := func(context.Context, string) (string, error) {
					if running.Add(1) > 1 {
						overlapped.Add(1)
					}
					defer running.Add(-1)
					time.Sleep(5 * time.Second) // ignores its context
					return "deployed", nil
				}
				side := toolwrap.Meta{SideEffects: true}
				// probe has no side effects, and runs as long as deploy.
				ex, err := toolwrap.New([]toolwrap.Tool{{Name: "deploy", Call: deploy, Meta: side}, {Name: "probe", Call: deploy}},
					toolwrap.Config{Timeout: time.Second, MaxParallel: c.par})
				if err != nil {
					t.Fatal(err)
				}
				ctx := context.Background()
				switch kind {
				case "cancel":
					var cancel context.CancelFunc
					ctx, cancel = context.WithCancel(ctx)
					defer cancel()
				case "deadline":
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, time.Hour)
					defer cancel()
				}
				ctx = middleware.WithObserver(ctx, middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
					if f, ok := e.(middleware.ToolFinished); ok && errors.Is(f.Err, toolwrap.ErrTimeout) {
						runtime.Goexit()
					}
				}))
				defer time.Sleep(time.Minute) // the deploys end
				calls := []middleware.ToolCall{{ID: "1", Name: c.first}, {ID: "2", Name: "deploy"}}
				var res []toolwrap.Result
				done := make(chan struct{})
				go func() {
					defer close(done)
					res, err = ex.Execute(ctx, calls)
				}()
				<-done
				if err != nil || len(res) != 2 {
					t.Fatalf("%d results, %v", len(res), err)
				}
				if n := overlapped.Load(); n > 0 {
					t.Errorf("a deploy started while the call given up on still ran (%d times)", n)
				}
				if r := res[0]; r.CallID != "1" || r.Err == nil {
					t.Errorf("call 1, given up on: %+v", r)
				}
				if r := res[1]; r.CallID != "2" || !errors.Is(r.Err, toolwrap.ErrNotRun) {
					t.Errorf("call 2, after a deploy that still runs: %s", fmt.Sprintf("%+v", r))
				}
			})
		})
	}
}
