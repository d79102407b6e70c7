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

// A tool that ends its goroutine with runtime.Goexit (testing's FailNow)
// instead of returning fails its call as a panic (before: with two such
// calls in parallel and no timeout, Execute waited forever; with a
// timeout, the call "timed out" though it had ended at once).
func TestToolCallingGoexitFailsItsCall(t *testing.T) {
	t.Parallel()
	for _, timeout := range []time.Duration{0, time.Second} {
		for _, calls := range [][]middleware.ToolCall{
			{{ID: "1", Name: "quits"}, {ID: "2", Name: "quits"}},
			{{ID: "1", Name: "quits"}, {ID: "2", Name: "ok"}},
		} {
			synctest.Test(t, func(t *testing.T) {
				ex, err := toolwrap.New([]toolwrap.Tool{
					{Name: "quits", Call: func(context.Context, string) (string, error) { runtime.Goexit(); return "", nil }},
					{Name: "ok", Meta: toolwrap.Meta{Timeout: 3 * time.Second}, Call: func(context.Context, string) (string, error) { return "fine", nil }},
				}, toolwrap.Config{MaxParallel: 2, Timeout: timeout})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				start := time.Now()
				res, err := ex.Execute(ctx, calls)
				if err != nil {
					t.Fatal(err)
				}
				for i, r := range res {
					if r.CallID != calls[i].ID {
						t.Fatalf("result %d is call %s's", i, r.CallID)
					}
					if calls[i].Name == "quits" && !errors.Is(r.Err, toolwrap.ErrPanic) {
						t.Errorf("timeout %v, %d calls: call %s: %q, %v; want a panic", timeout, len(calls), r.CallID, r.Content, r.Err)
					}
					if calls[i].Name == "ok" && r.Content != "fine" {
						t.Errorf("call %s: %q, %v", r.CallID, r.Content, r.Err)
					}
				}
				if d := time.Since(start); d != 0 {
					t.Errorf("timeout %v: Execute took %v of fake time, want none", timeout, d)
				}
			})
		}
	}
}
