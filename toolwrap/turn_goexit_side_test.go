package toolwrap_test

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/toolwrap"
)

// After a tool with side effects ends its goroutine with runtime.Goexit,
// a later Goexit of a tool without side effects does not pass for one
// with them: a call to a tool with side effects after a call given up on
// whose tool still runs is not run (ErrNotRun), under a context that never
// ends as under one that can end.
func TestGoexitAfterASideEffectsGoexitKeepsACallGivenUpOnRunning(t *testing.T) {
	t.Parallel()
	quits := func(context.Context, string) (string, error) { runtime.Goexit(); return "", nil }
	for _, plain := range []bool{true, false} {
		synctest.Test(t, func(t *testing.T) {
			var deployed atomic.Bool
			ex, err := toolwrap.New([]toolwrap.Tool{
				{Name: "side_quits", Meta: toolwrap.Meta{SideEffects: true}, Call: quits},
				{Name: "stubborn", Meta: toolwrap.Meta{Timeout: time.Second}, Call: func(context.Context, string) (string, error) {
					time.Sleep(10 * time.Second) // ignores its context
					return "late", nil
				}},
				{Name: "quits", Call: quits},
				{Name: "deploy", Meta: toolwrap.Meta{SideEffects: true}, Call: func(context.Context, string) (string, error) {
					deployed.Store(true)
					return "deployed", nil
				}},
			}, toolwrap.Config{MaxParallel: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer time.Sleep(20 * time.Second) // the stubborn tool ends
			ctx := context.Background()
			if !plain {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				defer cancel()
			}
			calls := []middleware.ToolCall{{ID: "1", Name: "side_quits"}, {ID: "2", Name: "stubborn"}, {ID: "3", Name: "quits"}, {ID: "4", Name: "deploy"}}
			res, err := ex.Execute(ctx, calls)
			if err != nil {
				t.Fatal(err)
			}
			if !errors.Is(res[1].Err, toolwrap.ErrTimeout) || !errors.Is(res[2].Err, toolwrap.ErrPanic) {
				t.Fatalf("plain=%v: calls 2 and 3: %v, %v; want a timeout and a panic", plain, res[1].Err, res[2].Err)
			}
			if deployed.Load() || !errors.Is(res[3].Err, toolwrap.ErrNotRun) {
				t.Fatalf("plain=%v: deploy ran beside the stubborn call given up on (deployed %v, result %q, %v); want ErrNotRun", plain, deployed.Load(), res[3].Content, res[3].Err)
			}
		})
	}
}
