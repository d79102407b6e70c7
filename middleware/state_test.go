package middleware_test

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
)

type keyA struct{ name string }
type keyB struct{ name string }

// A value is created once per key, whoever asks first, and a key's type
// and the value's type together name it: keys of two packages (two types)
// or one key read as two types never collide.
func TestRunValueAndCallMemo(t *testing.T) {
	t.Parallel()
	_, run := middleware.StartRun(context.Background(), "r")
	ci := &middleware.CallInfo{}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			p := middleware.RunValue(run, keyA{"x"}, func() *int { n := i; return &n })
			if q := middleware.RunValue(run, keyA{"x"}, func() *int { t.Error("created twice"); return nil }); q != p {
				t.Error("two values for one key")
			}
			c := middleware.CallMemo(ci, keyA{"x"}, func() int64 { return int64(i) })
			if d := middleware.CallMemo(ci, keyA{"x"}, func() int64 { t.Error("computed twice"); return -1 }); d != c {
				t.Error("two values for one key")
			}
		})
	}
	wg.Wait()
	if s := middleware.RunValue(run, keyB{"x"}, func() string { return "b" }); s != "b" {
		t.Errorf("another key type got %q", s)
	}
	if s := middleware.RunValue(run, keyA{"x"}, func() string { return "as string" }); s != "as string" {
		t.Errorf("the same key read as another type got %q", s)
	}
	// The same for CallMemo: another key type, or the same key read as
	// another type, is another value; so is another key of the same type.
	first := middleware.CallMemo(ci, keyA{"x"}, func() int64 { return -2 })
	if s := middleware.CallMemo(ci, keyB{"x"}, func() int64 { return 40 }); s != 40 {
		t.Errorf("another key type got %d", s)
	}
	if s := middleware.CallMemo(ci, keyA{"x"}, func() string { return "as string" }); s != "as string" {
		t.Errorf("the same key read as another type got %q", s)
	}
	if s := middleware.CallMemo(ci, keyA{"y"}, func() int64 { return 41 }); s != 41 {
		t.Errorf("another key got %d", s)
	}
	if again := middleware.CallMemo(ci, keyA{"x"}, func() int64 { return -3 }); again != first || first < 0 {
		t.Errorf("the first value %d became %d", first, again)
	}
	if v := middleware.CallMemo[keyA, int](nil, keyA{"x"}, func() int { return 7 }); v != 7 {
		t.Errorf("nil CallInfo: %d", v)
	}
}

// StartCall's context carries its CallInfo (the one it returns) and is
// otherwise its parent: values, deadline, cancellation and its cause.
func TestStartCallContext(t *testing.T) {
	t.Parallel()
	parent, cancel := context.WithCancelCause(middleware.WithTeam(context.Background(), "ops"))
	ctx, ci := middleware.StartCall(parent, middleware.CallFacts{Model: "m", Stage: middleware.StageFinalAnswer})
	if middleware.CallInfoFrom(ctx) != ci || ci.Stage() != middleware.StageFinalAnswer || middleware.TeamFrom(ctx) != "ops" {
		t.Fatalf("CallInfo %p (want %p), stage %q, team %q", middleware.CallInfoFrom(ctx), ci, ci.Stage(), middleware.TeamFrom(ctx))
	}
	ci.Update(func(f *middleware.CallFacts) { f.Attempts = append(f.Attempts, middleware.Attempt{Model: "m"}) })
	if f := ci.Facts(); len(f.Attempts) != 1 || f.Model != "m" {
		t.Errorf("facts %+v", f)
	}
	// A nested call has its own CallInfo.
	inner, ci2 := middleware.StartCall(ctx, middleware.CallFacts{})
	if ci2 == ci || middleware.CallInfoFrom(inner) != ci2 || middleware.CallInfoFrom(ctx) != ci {
		t.Error("nested CallInfo mixed up")
	}
	child, stop := context.WithCancel(inner)
	defer stop()
	if ctx.Err() != nil || child.Err() != nil {
		t.Fatal("ended early")
	}
	why := errors.New("why")
	cancel(why)
	<-child.Done()
	if !errors.Is(ctx.Err(), context.Canceled) || context.Cause(ctx) != why || context.Cause(child) != why {
		t.Errorf("err %v, cause %v / %v", ctx.Err(), context.Cause(ctx), context.Cause(child))
	}
}

// CloneRequest copies like Request.Clone — every field, the slices shared
// — into a request of its own, the first one of a call from the
// CallInfo's allocation, each later one anew, also concurrently.
func TestCloneRequest(t *testing.T) {
	t.Parallel()
	temp := 0.3
	r := &middleware.Request{Model: "m", Messages: []middleware.Message{{Role: middleware.RoleUser, Content: "hi"}},
		Tools: []middleware.Tool{{Name: "t"}}, ToolChoice: "auto", Temperature: &temp, Stop: []string{"x"}, MaxTokens: 9,
		ResponseFormat: []byte(`{}`), N: 2, Extra: []byte(`{"a":1}`), Native: "native"}
	orig := *r
	_, ci := middleware.StartCall(context.Background(), middleware.CallFacts{})
	var nilCI *middleware.CallInfo
	copies := make([]*middleware.Request, 9)
	var wg sync.WaitGroup
	for i := range copies {
		wg.Go(func() {
			if i == 0 {
				copies[i] = nilCI.CloneRequest(r)
				return
			}
			copies[i] = ci.CloneRequest(r)
		})
	}
	wg.Wait()
	for i, c := range copies {
		if c == r || !reflect.DeepEqual(*c, orig) || &c.Messages[0] != &r.Messages[0] {
			t.Fatalf("copy %d: %+v", i, c)
		}
		for j := range i {
			if copies[j] == c {
				t.Fatalf("copies %d and %d are one request", j, i)
			}
		}
		c.Model, c.MaxTokens = "other", i
	}
	if !reflect.DeepEqual(*r, orig) {
		t.Errorf("the original changed: %+v", r)
	}
}

// An estimate is computed once per key, whoever asks first, past the one
// kept in the CallInfo's own allocation as well; distinct keys never share
// a value; a nil CallInfo computes every time.
func TestCallInfoEstimate(t *testing.T) {
	t.Parallel()
	ci := &middleware.CallInfo{}
	msgs := make([]middleware.Message, 3)
	tools := make([]middleware.Tool, 2)
	est1, est2 := new(int), new(int)
	keys := []middleware.EstimateKey{
		{Estimator: est1, Encoding: "o200k_base", Messages: &msgs[0], N: 3},
		{Estimator: est1, Encoding: "cl100k_base", Messages: &msgs[0], N: 3},
		{Estimator: est2, Encoding: "o200k_base", Messages: &msgs[0], N: 3},
		{Estimator: est1, Encoding: "o200k_base", Messages: &msgs[0], N: 2},
		{Estimator: est1, Encoding: "o200k_base", Messages: &msgs[1], N: 2},
		{Estimator: est1, Encoding: "o200k_base", Messages: &msgs[0], N: 3, Tools: &tools[0], NT: 2},
		{Estimator: est1, Encoding: "o200k_base", Messages: &msgs[0], N: 3, Rule: [3]int64{0, 0, 1}},
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for round := range 3 {
				for i, k := range keys {
					want := int64(100 + i)
					got := ci.Estimate(k, func() int64 {
						if round > 0 {
							t.Errorf("goroutine %d: key %d computed again in round %d", g, i, round)
						}
						return want
					})
					if got != want {
						t.Errorf("key %d: %d, want %d", i, got, want)
					}
				}
			}
		})
	}
	wg.Wait()
	calls := 0
	var nilCI *middleware.CallInfo
	for range 2 {
		if v := nilCI.Estimate(keys[0], func() int64 { calls++; return 7 }); v != 7 {
			t.Fatalf("nil CallInfo: %d", v)
		}
	}
	if calls != 2 {
		t.Fatalf("nil CallInfo computed %d times, want every time (2)", calls)
	}
}
