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

// A tool that calls runtime.Goexit fails its call as a panic and Execute
// returns to its caller, whatever the parallelism, the timeout and the
// context (one that never ends included), and whether the tool has side
// effects or shares a cached flight (before: under context.Background
// with no timeout, the tool ran on Execute's own goroutine, or on the
// flight's, and Goexit ended Execute's caller or left it waiting).
func TestToolCallingGoexitFailsItsCallUnderAnyContext(t *testing.T) {
	t.Parallel()
	quits := func(context.Context, string) (string, error) { runtime.Goexit(); return "", nil }
	for _, plain := range []bool{true, false} {
		for _, timeout := range []time.Duration{0, time.Second} {
			for _, par := range []int{0, 1, 2, 3} {
				for _, meta := range []toolwrap.Meta{{}, {SideEffects: true}, {Idempotent: true}} {
					for _, calls := range [][]middleware.ToolCall{
						{{ID: "1", Name: "quits"}},
						{{ID: "1", Name: "quits"}, {ID: "2", Name: "quits"}},
						{{ID: "1", Name: "quits"}, {ID: "2", Name: "ok"}},
						{{ID: "1", Name: "ok"}, {ID: "2", Name: "quits"}, {ID: "3", Name: "ok"}},
					} {
						name := fmt.Sprintf("plain=%v/timeout=%v/parallel=%d/meta=%+v/calls=%d", plain, timeout, par, meta, len(calls))
						t.Run(name, func(t *testing.T) {
							synctest.Test(t, func(t *testing.T) {
								cfg := toolwrap.Config{MaxParallel: par, Timeout: timeout}
								if meta.Idempotent {
									cfg.CacheTTL = time.Minute
								}
								ex, err := toolwrap.New([]toolwrap.Tool{
									{Name: "quits", Meta: meta, Call: quits},
									{Name: "ok", Call: func(context.Context, string) (string, error) { return "fine", nil }},
								}, cfg)
								if err != nil {
									t.Fatal(err)
								}
								ctx := context.Background()
								if !plain {
									var cancel context.CancelFunc
									ctx, cancel = context.WithCancel(ctx)
									defer cancel()
								}
								var res []toolwrap.Result
								returned := false
								done := make(chan struct{})
								go func() {
									defer close(done)
									res, err = ex.Execute(ctx, calls)
									returned = true
								}()
								wait := time.NewTimer(time.Hour)
								defer wait.Stop()
								select {
								case <-done:
								case <-wait.C:
									t.Fatalf("%s: Execute has not returned after an hour", name)
								}
								if !returned {
									t.Errorf("%s: Execute's caller was ended by the tool's Goexit", name)
									return
								}
								if err != nil || len(res) != len(calls) {
									t.Fatalf("%s: %d results, %v", name, len(res), err)
								}
								for i, r := range res {
									if r.CallID != calls[i].ID {
										t.Fatalf("%s: result %d is call %q's", name, i, r.CallID)
									}
									if calls[i].Name == "quits" && !errors.Is(r.Err, toolwrap.ErrPanic) {
										t.Errorf("%s: call %s: %q, %v; want a panic", name, r.CallID, r.Content, r.Err)
									}
									if calls[i].Name == "ok" && (r.Err != nil || r.Content != "fine") {
										t.Errorf("%s: call %s: %q, %v", name, r.CallID, r.Content, r.Err)
									}
								}
							})
						})
					}
				}
			}
		}
	}
}
