package budget

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

type valueKey struct{}

// TestRetryAdmissionIsAValueContextToDeadlines: a call deadline below the
// layer (the timeout layer's) under a deadline above it that nothing
// watches (the run guard's) shares that one's timer through the layer's
// context, as through a context.WithValue: the same allocations (the
// layer's context was opaque to middleware.WithDeadline, which made the
// run deadline real, with a timer of its own, for every call); and it
// still ends with the run deadline's Stop.
func TestRetryAdmissionIsAValueContextToDeadlines(t *testing.T) {
	runWhy, callWhy := errors.New("run deadline"), errors.New("call deadline")
	cost := func(below func(context.Context) context.Context) float64 {
		return testing.AllocsPerRun(100, func() {
			outer := middleware.WithDeadline(context.Background(), time.Now().Add(time.Hour), runWhy)
			inner := middleware.WithDeadline(below(outer), time.Now().Add(30*time.Second), callWhy)
			_ = inner.Done()
			inner.Stop()
			outer.Stop()
		})
	}
	value := cost(func(ctx context.Context) context.Context { return context.WithValue(ctx, valueKey{}, 1) })
	layer := cost(func(ctx context.Context) context.Context { return &retryAdmission{Context: ctx} })
	if layer != value {
		t.Errorf("a call deadline under the layer's context: %v allocations, under a context.WithValue %v", layer, value)
	}
	outer := middleware.WithDeadline(context.Background(), time.Now().Add(time.Hour), runWhy)
	inner := middleware.WithDeadline(&retryAdmission{Context: outer}, time.Now().Add(30*time.Second), callWhy)
	done := inner.Done()
	outer.Stop()
	<-done
	if inner.Err() != context.Canceled || context.Cause(inner) != context.Canceled {
		t.Errorf("after the run deadline's Stop: %v, %v", inner.Err(), context.Cause(inner))
	}
	inner.Stop()
}
