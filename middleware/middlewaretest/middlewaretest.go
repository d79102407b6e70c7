// Package middlewaretest is the core's test kit: helpers for testing
// tokenwise middlewares, ours and yours.
package middlewaretest

import (
	"context"
	"sync"

	"github.com/tokenwise/tokenwise/middleware"
)

// Recorder is a middleware.Observer that keeps every event it sees, in
// order. The zero value is ready to use; it is safe for concurrent use.
type Recorder struct {
	mu     sync.Mutex
	events []middleware.Event
}

// Observe records e.
func (r *Recorder) Observe(_ context.Context, e middleware.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// Events returns a copy of the events recorded so far.
func (r *Recorder) Events() []middleware.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]middleware.Event(nil), r.events...)
}

// Of returns the recorded events of type T, in order.
func Of[T middleware.Event](r *Recorder) []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []T
	for _, e := range r.events {
		if t, ok := e.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

// Layer is what every tokenwise layer is: a value built by its package's
// New(Config, ...Option) whose Middleware method returns its middleware.
type Layer interface{ Middleware() middleware.Middleware }

// Must returns the middleware of a layer built by its New, panicking when
// New failed. It is for tests whose Config is known to be good:
//
//	h := middlewaretest.Must(retry.New(retry.Config{MaxAttempts: 3}))(next)
func Must[L Layer](l L, err error) middleware.Middleware {
	if err != nil {
		panic(err)
	}
	return l.Middleware()
}
