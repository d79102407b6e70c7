package toolwrap_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/toolwrap"
)

// TestAbandonedCallLeavesNothingBesideASideEffect: tools with side
// effects run alone and in order. A call whose tool ignores its context
// is given up on at its timeout (its observation is the timeout) while
// the tool still runs; a call of a tool with side effects after it, or
// any call after such a call that is a tool with side effects, would run
// beside it: it is not run, and its observation says so
// (toolwrap.ErrNotRun). Before, "rollback" ran beside the "deploy" it was
// to follow. A tool that stops at its timeout leaves the calls after it
// to run as before.
func TestAbandonedCallLeavesNothingBesideASideEffect(t *testing.T) {
	for _, c := range []struct {
		name      string
		calls     []string
		deafFirst bool     // the first call's tool ignores its context
		notRun    []string // the calls not run
	}{
		{"side effects, then side effects", []string{"deploy", "rollback"}, true, []string{"rollback"}},
		{"side effects, then a read", []string{"deploy", "check_disk", "check_net"}, true, []string{"check_disk", "check_net"}},
		{"a read, then side effects", []string{"status", "check_net", "rollback"}, true, []string{"rollback"}},
		{"a tool that stops at its timeout", []string{"deploy", "rollback"}, false, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var log eventLog
				release := make(chan struct{})
				slow := func(name string, side bool) toolwrap.Tool {
					return toolwrap.Tool{Name: name, Meta: toolwrap.Meta{SideEffects: side, Timeout: time.Second},
						Call: func(ctx context.Context, _ string) (string, error) {
							log.add("start " + name)
							defer log.add("end " + name)
							done := ctx.Done()
							if c.deafFirst {
								done = nil // ignores its context: ends at 5s, or when released
							}
							select {
							case <-time.After(5 * time.Second):
							case <-release:
							case <-done:
								return "", ctx.Err()
							}
							return name + " done", nil
						}}
				}
				ex, _ := toolwrap.New([]toolwrap.Tool{
					slow("deploy", true), slow("status", false),
					sleepTool("rollback", 100*time.Millisecond, &log, toolwrap.Meta{SideEffects: true}),
					sleepTool("check_disk", 100*time.Millisecond, &log, toolwrap.Meta{}),
					sleepTool("check_net", 100*time.Millisecond, &log, toolwrap.Meta{}),
				}, toolwrap.Config{MaxParallel: 4})
				res, err := ex.Execute(t.Context(), calls(c.calls...))
				close(release)
				synctest.Wait()
				if err != nil {
					t.Fatal(err)
				}
				if !errors.Is(res[0].Err, toolwrap.ErrTimeout) {
					t.Errorf("the first call: %v, want its timeout", res[0].Err)
				}
				for i, r := range res[1:] {
					name := c.calls[i+1]
					wantNotRun := false
					for _, n := range c.notRun {
						wantNotRun = wantNotRun || n == name
					}
					started := log.index("start "+name) >= 0
					if wantNotRun && (started || !errors.Is(r.Err, toolwrap.ErrNotRun) || r.Content != r.Err.Error()) {
						t.Errorf("%s beside the %s given up on but still running: started %v, %q (%v); want it not run, saying so",
							name, c.calls[0], started, r.Content, r.Err)
					}
					if !wantNotRun && (!started || r.Err != nil && !errors.Is(r.Err, toolwrap.ErrTimeout)) {
						t.Errorf("%s: started %v, %v; want it run", name, started, r.Err)
					}
				}
			})
		})
	}
}

// TestAbandonedCallLeavesNothingBesideASideEffectInLaterTurns: the same
// guarantee across the turns of a run. A call given up on in one turn
// whose tool still runs (it ignores its context) keeps a later turn of
// the same run from starting a tool with side effects beside it, and a
// tool with side effects given up on keeps any later call from starting:
// those calls are not run (toolwrap.ErrNotRun). Before, the next turn's
// "rollback" ran beside the "deploy" the previous turn gave up on. A tool
// that has returned since, another run, or one that stops at its timeout
// leaves the later turn to run as before.
func TestAbandonedCallLeavesNothingBesideASideEffectInLaterTurns(t *testing.T) {
	for _, c := range []struct {
		name     string
		first    string   // the first turn's call, given up on at 1s; its tool runs until 5s
		deaf     bool     // it ignores its context
		later    []string // the later turn's calls
		at       time.Duration
		otherRun bool
		notRun   []string
	}{
		{"side effects, then side effects", "deploy", true, []string{"rollback"}, 2 * time.Second, false, []string{"rollback"}},
		{"side effects, then a read", "deploy", true, []string{"check_disk", "check_net"}, 2 * time.Second, false, []string{"check_disk", "check_net"}},
		{"a read, then side effects", "status", true, []string{"check_net", "rollback"}, 2 * time.Second, false, []string{"rollback"}},
		{"the tool has returned since", "deploy", true, []string{"rollback"}, 6 * time.Second, false, nil},
		{"another run", "deploy", true, []string{"rollback", "check_disk"}, 2 * time.Second, true, nil},
		{"a tool that stops at its timeout", "deploy", false, []string{"rollback", "check_disk"}, 2 * time.Second, false, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var log eventLog
				slow := func(name string, side bool) toolwrap.Tool {
					return toolwrap.Tool{Name: name, Meta: toolwrap.Meta{SideEffects: side, Timeout: time.Second},
						Call: func(ctx context.Context, _ string) (string, error) {
							log.add("start " + name)
							defer log.add("end " + name)
							done := ctx.Done()
							if c.deaf {
								done = nil
							}
							select {
							case <-time.After(5 * time.Second):
							case <-done:
								return "", ctx.Err()
							}
							return name + " done", nil
						}}
				}
				ex, _ := toolwrap.New([]toolwrap.Tool{
					slow("deploy", true), slow("status", false),
					sleepTool("rollback", 100*time.Millisecond, &log, toolwrap.Meta{SideEffects: true}),
					sleepTool("check_disk", 100*time.Millisecond, &log, toolwrap.Meta{}),
					sleepTool("check_net", 100*time.Millisecond, &log, toolwrap.Meta{}),
				}, toolwrap.Config{MaxParallel: 4})
				ctx, _ := middleware.StartRun(t.Context(), "run")
				start := time.Now()
				res, err := ex.Execute(ctx, calls(c.first))
				if err != nil || !errors.Is(res[0].Err, toolwrap.ErrTimeout) {
					t.Fatalf("the first turn: %v, %v; want its timeout", res[0].Err, err)
				}
				if d := time.Since(start); d != time.Second {
					t.Errorf("the first turn took %v; want its call's timeout, 1s (no later call of the turn to wait for)", d)
				}
				time.Sleep(c.at - time.Since(start))
				later := ctx
				if c.otherRun {
					later, _ = middleware.StartRun(t.Context(), "other")
				}
				res, err = ex.Execute(later, calls(c.later...))
				synctest.Wait()
				if err != nil {
					t.Fatal(err)
				}
				for i, r := range res {
					name := c.later[i]
					wantNotRun := slices.Contains(c.notRun, name)
					started := log.index("start "+name) >= 0
					if wantNotRun && (started || !errors.Is(r.Err, toolwrap.ErrNotRun) || r.Content != r.Err.Error()) {
						t.Errorf("%s beside the %s an earlier turn gave up on, still running: started %v, %q (%v); want it not run, saying so",
							name, c.first, started, r.Content, r.Err)
					}
					if !wantNotRun && (!started || r.Err != nil) {
						t.Errorf("%s: started %v, %v; want it run", name, started, r.Err)
					}
				}
				time.Sleep(5 * time.Second) // the deaf tool ends
				synctest.Wait()
			})
		})
	}
}

// TestAbandonedCachedCallLeavesNothingBesideASideEffect: the guarantee
// holds for idempotent tools whose results are cached (Config.CacheTTL),
// whose calls run as a flight that identical calls share: a cached tool
// ignoring its context, given up on at its timeout in a parallel group,
// still runs, and the call of a tool with side effects after it is not
// run. Before, the call's wait ended with its context while the flight
// still ran the tool, and "rollback" ran beside it.
func TestAbandonedCachedCallLeavesNothingBesideASideEffect(t *testing.T) {
	for _, parallel := range []int{1, 4} {
		t.Run(fmt.Sprintf("max_parallel %d", parallel), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var log eventLog
				deaf := func(name string) toolwrap.Tool {
					return toolwrap.Tool{Name: name, Meta: toolwrap.Meta{Idempotent: true, Timeout: time.Second},
						Call: func(context.Context, string) (string, error) {
							log.add("start " + name)
							defer log.add("end " + name)
							time.Sleep(5 * time.Second) // ignores its context
							return name + " done", nil
						}}
				}
				ex, _ := toolwrap.New([]toolwrap.Tool{deaf("status"), deaf("health"),
					sleepTool("rollback", 100*time.Millisecond, &log, toolwrap.Meta{SideEffects: true}),
				}, toolwrap.Config{MaxParallel: parallel, CacheTTL: time.Minute})
				ctx, _ := middleware.StartRun(t.Context(), "run")
				res, err := ex.Execute(ctx, calls("status", "health", "rollback"))
				if err != nil {
					t.Fatal(err)
				}
				if !errors.Is(res[0].Err, toolwrap.ErrTimeout) || !errors.Is(res[1].Err, toolwrap.ErrTimeout) {
					t.Errorf("the cached tools: %v, %v; want their timeouts", res[0].Err, res[1].Err)
				}
				if started := log.index("start rollback") >= 0; started || !errors.Is(res[2].Err, toolwrap.ErrNotRun) {
					t.Errorf("rollback beside the cached tools given up on, still running: started %v, %q; want it not run", started, res[2].Content)
				}
				time.Sleep(5 * time.Second)
				synctest.Wait()
			})
		})
	}
}
