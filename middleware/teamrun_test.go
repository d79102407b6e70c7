package middleware_test

import (
	"context"
	"errors"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
)

var teamRunSink context.Context

// TestTeamRunIsOneAllocation pins StartTeamRun and WithTeamRun at one
// allocation (WithTeam and StartRun were three: two contexts and the
// Run; WithTeam and WithRun two), and checks that their context answers
// as the pair it replaces: the team, the run (a nil run hiding an outer
// one, as WithRun(ctx, nil) does), the parent's values and end.
func TestTeamRunIsOneAllocation(t *testing.T) {
	type vk struct{}
	parent, cancel := context.WithCancelCause(context.WithValue(context.Background(), vk{}, "v"))
	defer cancel(nil)
	if n := testing.AllocsPerRun(100, func() { teamRunSink, _ = middleware.StartTeamRun(parent, "sre", "call-1") }); n != 1 {
		t.Errorf("StartTeamRun: %v allocations, want 1", n)
	}
	outerCtx, outer := middleware.StartRun(parent, "outer")
	if n := testing.AllocsPerRun(100, func() { teamRunSink = middleware.WithTeamRun(parent, "sre", outer) }); n != 1 {
		t.Errorf("WithTeamRun: %v allocations, want 1", n)
	}
	ctx, run := middleware.StartTeamRun(outerCtx, "sre", "call-1")
	if run == nil || run.ID() != "call-1" || middleware.RunFrom(ctx) != run || middleware.TeamFrom(ctx) != "sre" {
		t.Fatalf("StartTeamRun: run %v, team %q", middleware.RunFrom(ctx), middleware.TeamFrom(ctx))
	}
	ref, refRun := middleware.StartRun(middleware.WithTeam(outerCtx, "sre"), "call-1")
	if refRun.ID() != run.ID() || middleware.TeamFrom(ref) != middleware.TeamFrom(ctx) {
		t.Error("not the run and team StartRun and WithTeam give")
	}
	for _, c := range []context.Context{ctx, ref, middleware.WithTeamRun(outerCtx, "sre", outer), middleware.WithTeamRun(outerCtx, "", nil)} {
		if c.Value(vk{}) != "v" {
			t.Error("the parent's value is lost")
		}
	}
	if got := middleware.RunFrom(middleware.WithTeamRun(outerCtx, "sre", outer)); got != outer {
		t.Errorf("WithTeamRun's run %v", got)
	}
	if got := middleware.RunFrom(middleware.WithTeamRun(outerCtx, "", nil)); got != middleware.RunFrom(middleware.WithRun(outerCtx, nil)) || got != nil {
		t.Errorf("WithTeamRun(ctx, \"\", nil)'s run %v, want nil as WithRun's", got)
	}
	if got := middleware.TeamFrom(middleware.WithTeam(ctx, "dev")); got != "dev" {
		t.Errorf("an inner WithTeam: %q", got)
	}
	cause := errors.New("gone")
	cancel(cause)
	<-ctx.Done()
	if ctx.Err() != context.Canceled || context.Cause(ctx) != cause {
		t.Errorf("after the parent's end: %v, %v", ctx.Err(), context.Cause(ctx))
	}
}
