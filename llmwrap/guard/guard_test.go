package guard_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap/guard"
	"github.com/tokenwise/tokenwise/llmwrap/instrument"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
)

var ok = middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
	return &middleware.Response{Model: req.Model}, nil
})

func TestStopsTheEleventhCall(t *testing.T) {
	t.Parallel()
	h := middleware.Then(ok, instrument.New(nil, nil), middlewaretest.Must(guard.New(guard.Config{MaxCalls: 10})))
	ctx, run := middleware.StartRun(context.Background(), "t")
	for i := 1; i <= 10; i++ {
		if _, err := h.Handle(ctx, &middleware.Request{Model: "m"}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	_, err := h.Handle(ctx, &middleware.Request{Model: "m"})
	var le *guard.LimitError
	if !errors.Is(err, guard.ErrMaxCalls) || !errors.As(err, &le) || le.Limit != 10 || le.Call != 11 || le.Run != "t" {
		t.Fatalf("11th call: err = %v", err)
	}
	if calls := run.Calls(); len(calls) != 11 || calls[10].Err == nil {
		t.Fatalf("the refused call is recorded too: %d calls", len(calls))
	}
	// Another run has its own count; calls outside a run are not limited.
	ctx2, _ := middleware.StartRun(context.Background(), "t2")
	if _, err := h.Handle(ctx2, &middleware.Request{Model: "m"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Handle(context.Background(), &middleware.Request{Model: "m"}); err != nil {
		t.Fatal(err)
	}
}

func TestCountsWithoutInstrument(t *testing.T) {
	t.Parallel()
	h := middleware.Then(ok, middlewaretest.Must(guard.New(guard.Config{MaxCalls: 2})))
	ctx, _ := middleware.StartRun(context.Background(), "t")
	h.Handle(ctx, &middleware.Request{})
	h.Handle(ctx, &middleware.Request{})
	if _, err := h.Handle(ctx, &middleware.Request{}); !errors.Is(err, guard.ErrMaxCalls) {
		t.Fatalf("err = %v", err)
	}
}

func TestRunDeadlineBoundsEveryCall(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		slow := middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		})
		h := middleware.Then(slow, middlewaretest.Must(guard.New(guard.Config{RunTimeout: 5 * time.Minute})))
		ctx, _ := middleware.StartRun(context.Background(), "t")
		start := time.Now()
		_, err := h.Handle(ctx, &middleware.Request{})
		if !errors.Is(err, guard.ErrRunDeadline) || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, middleware.ErrTimeout) {
			t.Fatalf("err = %v", err)
		}
		if d := time.Since(start); d != 5*time.Minute {
			t.Fatalf("ended after %v", d)
		}
		// Once the run's deadline passed, further calls are refused at once.
		_, err = h.Handle(ctx, &middleware.Request{})
		if !errors.Is(err, guard.ErrRunDeadline) || time.Since(start) != 5*time.Minute {
			t.Fatalf("late call: %v", err)
		}
	})
}

func TestZeroLimitsAddNoLayer(t *testing.T) {
	t.Parallel()
	if middlewaretest.Must(guard.New(guard.Config{})) != nil {
		t.Fatal("zero limits must add no layer")
	}
}

func TestNegativeLimitIsAnError(t *testing.T) {
	t.Parallel()
	for _, cfg := range []guard.Config{{MaxCalls: -1}, {RunTimeout: -time.Second}} {
		if _, err := guard.New(cfg); !errors.Is(err, guard.ErrConfig) {
			t.Errorf("New(%+v): %v, want ErrConfig", cfg, err)
		}
	}
}

// A shared run's calls on two processes (two Runs on one key of a
// RunStore) are counted together: of concurrent calls on both, exactly
// MaxCalls pass, with or without instrument numbering them; a run whose
// shared start is older than RunTimeout is refused in a process that never
// saw it; a store failure refuses the call with ErrRunStore.
func TestSharedRunLimitHoldsAcrossProcesses(t *testing.T) {
	t.Parallel()
	for _, withInstrument := range []bool{true, false} {
		mws := []middleware.Middleware{middlewaretest.Must(guard.New(guard.Config{MaxCalls: 7, RunTimeout: time.Hour}))}
		if withInstrument {
			mws = append([]middleware.Middleware{instrument.New(nil, nil)}, mws...)
		}
		h := middleware.Then(ok, mws...)
		store := &middlewaretest.RunStore{IdleTime: time.Hour}
		replicas := []*middleware.Run{middleware.OpenSharedRun("r", "t/r", store), middleware.OpenSharedRun("r", "t/r", store)}
		var passed, refused atomic.Int64
		var wg sync.WaitGroup
		for i := range 6 {
			wg.Go(func() {
				ctx := middleware.WithRun(context.Background(), replicas[i%2])
				for range 4 {
					_, err := h.Handle(ctx, &middleware.Request{Model: "m"})
					switch {
					case err == nil:
						passed.Add(1)
					case errors.Is(err, guard.ErrMaxCalls):
						refused.Add(1)
					default:
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		if passed.Load() != 7 || refused.Load() != 24-7 {
			t.Fatalf("instrument %v: %d passed, %d refused; want exactly 7 of 24", withInstrument, passed.Load(), refused.Load())
		}

		store.SetStart("t/old", time.Now().Add(-2*time.Hour))
		old := middleware.WithRun(context.Background(), middleware.OpenSharedRun("old", "t/old", store))
		if _, err := h.Handle(old, &middleware.Request{Model: "m"}); !errors.Is(err, guard.ErrRunDeadline) {
			t.Fatalf("a run started 2h ago elsewhere, 1h deadline: %v, want ErrRunDeadline", err)
		}
		store.Fail(errors.New("down"))
		var rec middlewaretest.Recorder
		fresh := middleware.WithObserver(middleware.WithRun(context.Background(), middleware.OpenSharedRun("new", "t/new", store)), &rec)
		if _, err := h.Handle(fresh, &middleware.Request{Model: "m"}); !errors.Is(err, middleware.ErrRunStore) {
			t.Fatalf("store down: %v, want ErrRunStore", err)
		}
		if sf := middlewaretest.Of[middleware.StoreFailed](&rec); withInstrument && (len(sf) != 1 || sf[0].Store != "runs") {
			t.Fatalf("store down: events %+v, want one StoreFailed of the runs", sf)
		}
	}
}
