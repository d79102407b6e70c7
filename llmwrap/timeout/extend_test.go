package timeout_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap/timeout"
	"github.com/tokenwise/tokenwise/middleware"
)

// thinker answers after d, or gives up when its context ends.
func thinker(d time.Duration) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		select {
		case <-time.After(d):
			return &middleware.Response{Model: req.Model}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
}

func mustNew(t *testing.T, cfg timeout.Config) *timeout.Timeout {
	t.Helper()
	l, err := timeout.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// An extendable total (gpt-4o's 60s in a policy that gives o3 10m) is
// extended by an attempt of a model with a longer total, from the call's
// start, and never shortened by one with a shorter total; a total that
// has passed is not extended. Each attempt keeps its own call limit, also
// one that began before another attempt running beside it (a hedge)
// extended the total: it is not lifted with the total.
func TestExtendableTotal(t *testing.T) {
	gpt4o := timeout.Config{Call: 30 * time.Second, Total: time.Minute}
	o3 := timeout.Config{Call: 10 * time.Minute, Total: 10 * time.Minute}
	mini := timeout.Config{Call: 20 * time.Second, Total: 20 * time.Second}
	total := mustNew(t, gpt4o).ExtendableTotalMiddleware(10 * time.Minute)
	attempt := func(cfg timeout.Config, d time.Duration) middleware.Handler {
		return mustNew(t, cfg).ExtendingMiddleware()(thinker(d))
	}
	req := &middleware.Request{Model: "gpt-4o"}
	type step struct {
		at   time.Duration // when the attempt starts
		cfg  timeout.Config
		took time.Duration // how long its model thinks
	}
	for _, c := range []struct {
		name    string
		steps   []step
		wantEnd []time.Duration // when each attempt ends
		wantErr []error         // each attempt's error (nil: answered)
	}{
		{"o3 thinks 3m", []step{{0, o3, 3 * time.Minute}}, []time.Duration{3 * time.Minute}, []error{nil}},
		{"o3 hung", []step{{0, o3, time.Hour}}, []time.Duration{10 * time.Minute}, []error{timeout.ErrTotal}},
		{"o3 after gpt-4o's 45s", []step{{0, gpt4o, 45 * time.Second}, {45 * time.Second, o3, time.Hour}},
			[]time.Duration{30 * time.Second, 10 * time.Minute}, []error{timeout.ErrCall, timeout.ErrTotal}},
		{"a shorter total does not shorten it", []step{{0, mini, 15 * time.Second}, {15 * time.Second, gpt4o, 29 * time.Second}, {44 * time.Second, gpt4o, 29 * time.Second}},
			[]time.Duration{15 * time.Second, 44 * time.Second, time.Minute}, []error{nil, nil, timeout.ErrTotal}},
		{"a passed total is not extended", []step{{0, gpt4o, time.Hour}, {30 * time.Second, gpt4o, time.Hour}, {61 * time.Second, o3, time.Minute}},
			[]time.Duration{30 * time.Second, time.Minute, 61 * time.Second}, []error{timeout.ErrCall, timeout.ErrTotal, timeout.ErrTotal}},
		{"a hedge extends it beside a running attempt", []step{{45 * time.Second, gpt4o, time.Hour}, {50 * time.Second, o3, 3 * time.Minute}},
			[]time.Duration{75 * time.Second, 50*time.Second + 3*time.Minute}, []error{timeout.ErrCall, nil}},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				ends := make([]time.Duration, len(c.steps))
				errs := make([]error, len(c.steps))
				h := total(middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
					done := make(chan struct{}, len(c.steps))
					for i, s := range c.steps {
						time.Sleep(s.at - time.Since(start))
						go func() {
							defer func() { done <- struct{}{} }()
							_, errs[i] = attempt(s.cfg, s.took).Handle(ctx, req)
							ends[i] = time.Since(start)
						}()
					}
					for range c.steps {
						<-done
					}
					return nil, errs[len(errs)-1]
				}))
				_, err := h.Handle(context.Background(), req)
				for i := range c.steps {
					if ends[i] != c.wantEnd[i] {
						t.Errorf("attempt %d ended at %v, want %v (%v)", i, ends[i], c.wantEnd[i], errs[i])
					}
					// An attempt the total ended has its context's
					// error (its call limit's, when both end at once);
					// the total middleware names the total.
					ended := errors.Is(errs[i], context.Canceled) || errors.Is(errs[i], context.DeadlineExceeded)
					if w := c.wantErr[i]; w == nil && errs[i] != nil || w == timeout.ErrCall && !errors.Is(errs[i], w) ||
						w == timeout.ErrTotal && !ended {
						t.Errorf("attempt %d: err %v, want %v", i, errs[i], w)
					}
				}
				if w := c.wantErr[len(c.wantErr)-1]; w != nil && (!errors.Is(err, w) || !errors.Is(err, context.DeadlineExceeded)) {
					t.Errorf("the call: err %v, want %v and context.DeadlineExceeded", err, w)
				}
			})
		})
	}
}

// An extendable total that nothing extends costs a call no more
// allocations than the plain total: both lazy, no timer and no
// cancellation machinery for a model that never watches its context (the
// call deadline of the attempt under it stays lazy too).
func TestExtendableTotalAllocatesAsPlain(t *testing.T) {
	tm := mustNew(t, timeout.Config{Total: time.Minute, Call: 30 * time.Second})
	answer := middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		return &middleware.Response{Model: req.Model}, nil
	})
	plain := tm.TotalMiddleware()(tm.Middleware()(answer))
	ext := tm.ExtendableTotalMiddleware(10 * time.Minute)(tm.ExtendingMiddleware()(answer))
	req := request(nil)
	for _, instrumented := range []bool{false, true} {
		allocs := func(h middleware.Handler) float64 {
			return testing.AllocsPerRun(200, func() {
				ctx := context.Background()
				if instrumented {
					// A CallInfo holds the call's first deadlines.
					ctx = middleware.WithCallInfo(ctx, middleware.NewCallInfo(middleware.CallFacts{}))
				}
				if _, err := h.Handle(ctx, req); err != nil {
					t.Fatal(err)
				}
			})
		}
		p, e := allocs(plain), allocs(ext)
		if e > p {
			t.Errorf("instrumented %v: extendable total: %v allocations a call, the plain one %v", instrumented, e, p)
		}
	}
}
