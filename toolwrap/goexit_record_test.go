package toolwrap_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/toolwrap"
)

// A call whose tool calls runtime.Goexit is recorded in the run and
// emitted as a ToolFinished event like any failed call, whatever path
// runs it (before: in a group of calls started at once under one
// timeout, it was neither recorded nor emitted: the run had 1 record of
// 2 calls).
func TestToolCallingGoexitIsRecorded(t *testing.T) {
	t.Parallel()
	quits := func(context.Context, string) (string, error) { runtime.Goexit(); return "", nil }
	for _, timeout := range []time.Duration{time.Second, 0} {
		for _, par := range []int{1, 2} {
			for _, cancellable := range []bool{false, true} {
				t.Run(fmt.Sprintf("timeout=%v/parallel=%d/cancellable=%v", timeout, par, cancellable), func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						ex, err := toolwrap.New([]toolwrap.Tool{
							{Name: "quits", Call: quits},
							{Name: "ok", Call: func(context.Context, string) (string, error) { return "fine", nil }},
						}, toolwrap.Config{MaxParallel: par, Timeout: timeout})
						if err != nil {
							t.Fatal(err)
						}
						ctx := context.Background()
						if cancellable {
							var cancel context.CancelFunc
							ctx, cancel = context.WithCancel(ctx)
							defer cancel()
						}
						var mu sync.Mutex
						events := map[string]error{}
						ctx = middleware.WithObserver(ctx, middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
							if f, ok := e.(middleware.ToolFinished); ok {
								mu.Lock()
								events[f.CallID] = f.Err
								mu.Unlock()
							}
						}))
						ctx, run := middleware.StartRun(ctx, "goexit")
						calls := []middleware.ToolCall{{ID: "1", Name: "quits"}, {ID: "2", Name: "ok"}}
						res, err := ex.Execute(ctx, calls)
						if err != nil || len(res) != 2 || !errors.Is(res[0].Err, toolwrap.ErrPanic) || res[1].Content != "fine" {
							t.Fatalf("timeout %v, parallel %d, cancellable %v: %+v, %v", timeout, par, cancellable, res, err)
						}
						recs := map[string]error{}
						for _, r := range run.Tools() {
							recs[r.CallID] = r.Err
						}
						for _, got := range []map[string]error{recs, events} {
							if len(got) != 2 || !errors.Is(got["1"], toolwrap.ErrPanic) || got["2"] != nil {
								t.Errorf("timeout %v, parallel %d, cancellable %v: records %v, events %v; want both calls, the first a panic", timeout, par, cancellable, recs, events)
								break
							}
						}
					})
				})
			}
		}
	}
}
