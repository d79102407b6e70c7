package middleware_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

// recorder appends its name and the event's kind to a shared log.
type recorder struct {
	name string
	log  *[]string
}

func (r *recorder) Observe(_ context.Context, e middleware.Event) {
	*r.log = append(*r.log, r.name+":"+e.Kind())
}

var observerCtxSink context.Context

// TestWithObserverIsOneAllocation pins WithObserver at one allocation,
// on a context without an observer and on one with one already (it was
// two and three: the context, and the slice fanning out to the
// observers), and that events reach every observer in the order they were
// added, under any depth of WithObserver and with values and deadlines of
// the contexts around it kept.
func TestWithObserverIsOneAllocation(t *testing.T) {
	var log []string
	a, b, c := &recorder{"a", &log}, &recorder{"b", &log}, &recorder{"c", &log}
	base := context.Background()
	withA := middleware.WithObserver(base, a)
	if n := testing.AllocsPerRun(100, func() { observerCtxSink = middleware.WithObserver(base, a) }); n != 1 {
		t.Errorf("WithObserver on a context without an observer: %v allocations, want 1", n)
	}
	if n := testing.AllocsPerRun(100, func() { observerCtxSink = middleware.WithObserver(withA, b) }); n != 1 {
		t.Errorf("WithObserver on a context with an observer: %v allocations, want 1", n)
	}
	if middleware.WithObserver(withA, nil) != withA {
		t.Error("WithObserver(ctx, nil) is not ctx")
	}
	if middleware.Observing(base) || middleware.ObserverFrom(base) != nil {
		t.Error("a context without an observer is observing")
	}
	type vk struct{}
	dl := time.Now().Add(time.Hour)
	parent, cancel := context.WithDeadline(context.WithValue(base, vk{}, "v"), dl)
	defer cancel()
	ctx := middleware.WithObserver(middleware.WithObserver(middleware.WithTeam(middleware.WithObserver(parent, a), "t"), b), c)
	middleware.Emit(ctx, middleware.CallStarted{})
	middleware.Emit(middleware.WithObserver(ctx, middleware.Observers(a, b)), middleware.FellBack{})
	want := []string{"a:call.started", "b:call.started", "c:call.started",
		"a:fallback", "b:fallback", "c:fallback", "a:fallback", "b:fallback"}
	if len(log) != len(want) {
		t.Fatalf("events %v, want %v", log, want)
	}
	for i := range want {
		if log[i] != want[i] {
			t.Fatalf("events %v, want %v", log, want)
		}
	}
	if ctx.Value(vk{}) != "v" || middleware.TeamFrom(ctx) != "t" {
		t.Error("the values around the observers are lost")
	}
	if d, ok := ctx.Deadline(); !ok || !d.Equal(dl) {
		t.Errorf("Deadline = %v, %v; want %v", d, ok, dl)
	}
	cancel()
	<-ctx.Done()
	if ctx.Err() != context.Canceled {
		t.Errorf("Err = %v after the parent's cancel", ctx.Err())
	}
}

// observedCtx is a layer's own context adding an observer with Observed.
type observedCtx struct {
	context.Context
	obs middleware.Observed
}

func (c *observedCtx) Value(key any) any {
	if v, ok := c.obs.Value(key); ok {
		return v
	}
	return c.Context.Value(key)
}

// TestObservedIsWithObserver: a context adding an observer with Observed
// delivers events as WithObserver's does, after the parent's observers;
// without an observer it adds none.
func TestObservedIsWithObserver(t *testing.T) {
	var log []string
	a, b := &recorder{"a", &log}, &recorder{"b", &log}
	for _, parent := range []context.Context{context.Background(), middleware.WithObserver(context.Background(), a)} {
		log = nil
		c := &observedCtx{Context: parent}
		if middleware.ObserverFrom(c) != middleware.ObserverFrom(parent) {
			t.Error("the zero Observed adds an observer")
		}
		c.obs.Set(parent, nil)
		if middleware.ObserverFrom(c) != middleware.ObserverFrom(parent) {
			t.Error("Set(parent, nil) adds an observer")
		}
		c.obs.Set(parent, b)
		middleware.Emit(c, middleware.CallStarted{})
		want := "b:call.started"
		if middleware.Observing(parent) {
			want = "a:call.started b:call.started"
		}
		if got := strings.Join(log, " "); got != want {
			t.Errorf("events %q, want %q", got, want)
		}
	}
}

var callInfoSink *middleware.CallInfo

// TestStartObservedCallIsOneAllocation pins StartObservedCall at one
// allocation (StartCall under WithObserver was two), and checks that its
// context is that pair's: the CallInfo holding the facts, the outer call,
// the observers in order, and no observer added for a nil one.
func TestStartObservedCallIsOneAllocation(t *testing.T) {
	var log []string
	a, b := &recorder{"a", &log}, &recorder{"b", &log}
	parent := middleware.WithObserver(context.Background(), a)
	f := middleware.CallFacts{Team: "sre", Model: "gpt-4o"}
	if n := testing.AllocsPerRun(100, func() { observerCtxSink, callInfoSink = middleware.StartObservedCall(parent, f, b) }); n != 1 {
		t.Errorf("StartObservedCall: %v allocations, want 1", n)
	}
	outerCtx, outer := middleware.StartCall(parent, middleware.CallFacts{})
	ctx, ci := middleware.StartObservedCall(outerCtx, f, b)
	if middleware.CallInfoFrom(ctx) != ci || ci.Outer() != outer || ci.Facts().Team != "sre" || ci.Facts().Model != "gpt-4o" {
		t.Errorf("CallInfo %v, outer %v", ci.Facts(), ci.Outer())
	}
	ci.Update(func(f *middleware.CallFacts) { f.Attempts = append(f.Attempts, middleware.Attempt{Model: "gpt-4o"}) })
	if len(ci.Facts().Attempts) != 1 {
		t.Errorf("attempts %v", ci.Facts().Attempts)
	}
	middleware.Emit(ctx, middleware.CallStarted{})
	if got := strings.Join(log, " "); got != "a:call.started b:call.started" {
		t.Errorf("events %q", got)
	}
	ctx2, _ := middleware.StartObservedCall(parent, f, nil)
	if middleware.ObserverFrom(ctx2) != middleware.ObserverFrom(parent) {
		t.Error("a nil observer was added")
	}
}
