// Package deadlinecheck holds a test check shared by the layers whose
// contexts add values to a call's context and nothing else.
package deadlinecheck

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

type valueKey struct{}

// ValueContext checks that wrap's context is a value context to
// middleware.WithDeadline: a call deadline under it, under a deadline
// above it that nothing watches (the run guard's), shares that one's
// timer through it, as through a context.WithValue — the same
// allocations (an opaque context made the run deadline real, with a timer
// of its own, for every call) — and still ends with the run deadline's
// Stop.
func ValueContext(t *testing.T, wrap func(context.Context) context.Context) {
	t.Helper()
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
	layer := cost(wrap)
	if layer != value {
		t.Errorf("a call deadline under the layer's context: %v allocations, under a context.WithValue %v", layer, value)
	}
	outer := middleware.WithDeadline(context.Background(), time.Now().Add(time.Hour), runWhy)
	inner := middleware.WithDeadline(wrap(outer), time.Now().Add(30*time.Second), callWhy)
	done := inner.Done()
	outer.Stop()
	<-done
	if inner.Err() != context.Canceled || context.Cause(inner) != context.Canceled {
		t.Errorf("after the run deadline's Stop: %v, %v", inner.Err(), context.Cause(inner))
	}
	inner.Stop()
}
